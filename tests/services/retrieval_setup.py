"""A small help-desk app for the retrieval tests: a knowledge base of three documents
embedded by bag-of-words vectors (deterministic, offline), and a dataset of questions
whose rows name the document that answers them."""

from __future__ import annotations

from typing import Any

from sqlmodel import Session

from studio.core.errors import ProviderUnavailableError
from studio.core.schemas import EmbeddingRequest, EmbeddingResponse
from studio.core.templates import PromptTemplate
from studio.providers import register
from studio.services import knowledge as kb_service
from studio.services.apps import create_app
from studio.services.datasets import upload_dataset
from studio.services.knowledge_parse import ChunkingOptions
from studio.services.retrieval_spec import RetrievalSpec
from studio.services.runs import RunConfig
from tests.services.knowledge_files import WordsProvider, add_words_connection

DOCUMENTS = [
    ("plans.md", b"Starter costs 12 euros a month.\n\nGrowth costs 29 euros and adds phone.\n"),
    ("refunds.md", b"Yearly plans are refunded within 30 days.\n\nMonthly plans are not.\n"),
    ("data.md", b"Customer data is stored in Frankfurt.\n\nBackups are kept for 35 days.\n"),
]
QUESTIONS = (
    "question,expected_document\n"
    "How much does Starter cost a month?,plans.md\n"
    "Are yearly plans refunded?,refunds.md\n"
    "Where is customer data stored?,data.md\n"
)
PROMPT = "Answer from these notes:\n{{context}}\nQuestion: {{question}}"


class FlakyWords(WordsProvider):
    """Bag-of-words embeddings that fail (a 503, after retries) for texts containing
    :attr:`fail_on`, as an embedding server that goes down mid-run would."""

    kind = "flakywords"
    description = "Bag-of-words embeddings that fail on a word"
    fail_on: str | None = None

    async def embed(self, model: str, request: EmbeddingRequest) -> EmbeddingResponse:
        word = type(self).fail_on
        if word and any(word in t for t in request.texts):
            raise ProviderUnavailableError("the embedding server is down", provider="flakywords")
        return await super().embed(model, request)


def add_flaky_connection(session: Session) -> str:
    from studio.models.connections import ConnectionCreate, add_connection

    register(FlakyWords)
    FlakyWords.fail_on = None
    add_connection(
        session=session,
        data=ConnectionCreate(name="flaky", kind="flakywords", base_url="http://flaky.invalid"),
    )
    session.commit()
    return "flaky/bag"


def help_app(session: Session, name: str = "Help desk") -> int:
    app = create_app(session=session, name=name)
    assert app.id is not None
    session.commit()
    return app.id


def handbook(session: Session, app_id: int, model: str | None = None, name: str = "kb") -> int:
    """A knowledge base of :data:`DOCUMENTS` (one chunk per paragraph), embedded."""
    WordsProvider.asked.clear()
    kb = kb_service.create_knowledge_base(
        session=session,
        app_id=app_id,
        name=name,
        embedding_model=model or add_words_connection(session),
        chunking=ChunkingOptions(method="paragraphs", size=200, overlap=0),
    )
    session.commit()
    assert kb.id is not None
    results = kb_service.ingest_files(kb_id=kb.id, files=DOCUMENTS)
    assert all(isinstance(r, kb_service.DocumentResult) for r in results), results
    return kb.id


def questions(session: Session, app_id: int) -> int:
    version = upload_dataset(
        session=session, app_id=app_id, name="questions", data=QUESTIONS.encode(), filename="q.csv"
    )
    session.commit()
    assert version.id is not None
    return version.id


def rag_config(kb_id: int, prompt: str = PROMPT, **retrieval: Any) -> RunConfig:
    spec = RetrievalSpec(kb_id=kb_id, **{"top_k": 1, **retrieval})
    return RunConfig(
        model="mock/echo",
        prompt=PromptTemplate.completion(prompt),
        parameters={"max_tokens": 20},
        concurrency=2,
        retrieval=spec,
    )
