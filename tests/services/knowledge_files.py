"""Small documents for the knowledge base tests: a hand-made PDF (no PDF library writes
text), and an encrypted copy made with pypdf; and a bag-of-words embedding provider."""

from __future__ import annotations

import asyncio
import io
import zlib
from collections import Counter

from sqlmodel import Session

from studio.core.schemas import EmbeddingRequest, EmbeddingResponse, ModelType
from studio.providers import register
from studio.providers.base import Provider


def _escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace("(", "\\(").replace(")", "\\)")


def make_pdf(pages: list[list[str]]) -> bytes:
    """A valid PDF whose page ``n`` shows the lines ``pages[n]`` in Helvetica."""
    objects: list[bytes] = []
    count = len(pages)
    kids = " ".join(f"{4 + 2 * i} 0 R" for i in range(count))
    objects.append(b"<< /Type /Catalog /Pages 2 0 R >>")
    objects.append(f"<< /Type /Pages /Kids [{kids}] /Count {count} >>".encode())
    objects.append(b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>")
    for i, lines in enumerate(pages):
        body = (
            "BT /F1 11 Tf 50 780 Td 14 TL "
            + " ".join(f"({_escape(line)}) Tj T*" for line in lines)
            + " ET"
        )
        stream = body.encode("latin-1")
        objects.append(
            f"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] "
            f"/Resources << /Font << /F1 3 0 R >> >> /Contents {5 + 2 * i} 0 R >>".encode()
        )
        objects.append(f"<< /Length {len(stream)} >>\nstream\n".encode() + stream + b"\nendstream")
    out = io.BytesIO()
    out.write(b"%PDF-1.4\n")
    offsets = []
    for number, obj in enumerate(objects, start=1):
        offsets.append(out.tell())
        out.write(f"{number} 0 obj\n".encode() + obj + b"\nendobj\n")
    xref = out.tell()
    out.write(f"xref\n0 {len(objects) + 1}\n0000000000 65535 f \n".encode())
    for offset in offsets:
        out.write(f"{offset:010d} 00000 n \n".encode())
    out.write(
        f"trailer\n<< /Size {len(objects) + 1} /Root 1 0 R >>\nstartxref\n{xref}\n%%EOF\n".encode()
    )
    return out.getvalue()


def encrypted_pdf(data: bytes, password: str = "secret") -> bytes:
    import pypdf

    writer = pypdf.PdfWriter(clone_from=pypdf.PdfReader(io.BytesIO(data)))
    writer.encrypt(password, algorithm="AES-128")
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()


WORDS_DIM = 256


def words_vector(text: str) -> list[float]:
    """A bag-of-words vector: each lower-cased word adds 1 in a dimension of its own."""
    vector = [0.0] * WORDS_DIM
    for word in text.lower().replace("?", " ").replace(".", " ").split():
        vector[zlib.crc32(word.encode()) % WORDS_DIM] += 1.0
    return vector


class WordsProvider(Provider):
    """Embeddings that are bags of words (deterministic, no weights), optionally slow;
    ``asked`` counts how often each text was embedded in this process."""

    kind = "words"
    description = "Bag-of-words embeddings for tests"
    model_types = frozenset({ModelType.EMBEDDING})
    delay_s: float = 0.0
    asked: Counter[str] = Counter()

    async def embed(self, model: str, request: EmbeddingRequest) -> EmbeddingResponse:
        if type(self).delay_s:
            await asyncio.sleep(type(self).delay_s)
        type(self).asked.update(request.texts)
        return EmbeddingResponse(
            embeddings=[(t, words_vector(t)) for t in request.texts],
            tokens_used=sum(len(t.split()) for t in request.texts),
        )


def add_words_connection(session: Session, name: str = "words") -> str:
    """Register :class:`WordsProvider` and a connection; returns the model ref to use."""
    from studio.models.connections import ConnectionCreate, add_connection

    register(WordsProvider)
    add_connection(
        session=session,
        data=ConnectionCreate(name=name, kind="words", base_url="http://words.invalid"),
    )
    session.commit()
    return f"{name}/bag"
