"""llama.cpp for GGUF files: completion, chat, and agents whose tool choice a grammar keeps
to valid JSON. Weights load once per process through :func:`~studio.providers.local.load_model`.
"""

from __future__ import annotations

import ctypes
import json
import re
import uuid
from collections.abc import Iterator
from contextlib import aclosing, contextmanager
from pathlib import Path
from typing import Any, ClassVar

from pydantic import Field

from studio.core.errors import (
    ConfigError,
    ProviderUnavailableError,
)
from studio.core.schemas import (
    ActionContext,
    AgentAction,
    AgentRequest,
    AgentResponse,
    ChatCompletionRequest,
    ChatCompletionResponse,
    CompletionRequest,
    CompletionResponse,
    Message,
    ModelType,
    Sampling,
    Tool,
    ToolRequest,
)
from studio.providers.base import ChunkStream, StreamChunk
from studio.providers.local import LoadedModel, LocalProvider, load_model, require

__all__ = ["LlamaCppProvider", "agent_messages", "agent_schema", "chat_dicts", "parse_agent_reply"]


# -- llama.cpp ------------------------------------------------------------------------


def _check_gguf(path_text: str, connection: str) -> Path:
    if not path_text:
        raise ConfigError(
            f"Connection '{connection}' (llama-cpp) has no model_path.",
            hint="Set the option model_path to a .gguf model file.",
        )
    path = Path(path_text).expanduser().resolve()
    if not path.is_file():
        raise ConfigError(
            f"Model file '{path}' does not exist or is not a file (connection '{connection}')."
        )
    with path.open("rb") as fh:
        if fh.read(4) != b"GGUF":
            raise ConfigError(
                f"Model file '{path.name}' is not a GGUF file (it does not start with 'GGUF').",
                hint="llama.cpp needs a .gguf file; convert the model or pick another file.",
            )
    return path


GGML_LOG_LEVEL_ERROR = 4


@contextmanager
def _llama_errors(llama_cpp: Any) -> Iterator[list[str]]:
    """Collect llama.cpp's error log lines: its loader gives the reason for a failure only there."""
    errors: list[str] = []

    @llama_cpp.llama_log_callback
    def collect(level: int, text: bytes, user_data: Any) -> None:
        if level == GGML_LOG_LEVEL_ERROR:
            errors.append(text.decode("utf-8", "replace").strip())

    llama_cpp.llama_log_set(collect, ctypes.c_void_p(0))
    try:
        yield errors
    finally:  # give the log back to llama-cpp-python's own handler
        from llama_cpp._logger import llama_log_callback

        llama_cpp.llama_log_set(llama_log_callback, ctypes.c_void_p(0))


def _load_llama(path: Path, options: LlamaCppProvider.Options) -> tuple[Any, dict[str, Any]]:
    llama_cpp = require("llama_cpp", "llama-cpp-python")
    with _llama_errors(llama_cpp) as errors:
        try:
            llm = llama_cpp.Llama(
                model_path=str(path),
                n_ctx=options.n_ctx,
                n_threads=options.n_threads,
                chat_format=options.chat_format,
                lora_path=options.lora_path,
                verbose=False,
            )
        except (ValueError, RuntimeError, OSError) as exc:
            said = [
                e.split("error loading model: ")[-1] for e in errors if "to load model" not in e
            ]
            reason = "; ".join(said) or str(exc)
            raise ConfigError(
                f"llama.cpp could not load the model file '{path.name}' "
                f"({path.stat().st_size:,} bytes): {reason}.",
                hint="The file is corrupt, truncated or of an architecture this llama.cpp "
                "build does not support; download it again or pick another GGUF model.",
            ) from exc
    formatter = None
    template = llm.metadata.get("tokenizer.chat_template")
    if options.chat_format is None and template:
        # Chat with the template stored in the file (not a guessed look-alike) and keep
        # a formatter identical to llama's own, so count_tokens is exact.
        from llama_cpp.llama_chat_format import Jinja2ChatFormatter

        llm.chat_format = "chat_template.default"
        eos, bos = llm.token_eos(), llm.token_bos()
        formatter = Jinja2ChatFormatter(
            template=template,
            eos_token=llm.detokenize([eos], special=True).decode() if eos != -1 else "",
            bos_token=llm.detokenize([bos], special=True).decode() if bos != -1 else "",
            stop_token_ids=[eos],
        )
    return llm, {"formatter": formatter}


def chat_dicts(messages: list[Message]) -> list[dict[str, str]]:
    """Messages for a chat template; tool results become user turns."""
    return [
        {"role": "user", "content": f"Result of tool {m.name or ''}: {m.content}"}
        if m.role == "tool"
        else {"role": m.role, "content": m.content}
        for m in messages
    ]


class LlamaCppProvider(LocalProvider):
    kind = "llama-cpp"
    description = "A local GGUF model run in-process by llama.cpp; offline, no key."
    model_types: ClassVar[frozenset[ModelType]] = frozenset(
        {ModelType.COMPLETION, ModelType.CHAT_COMPLETION, ModelType.AGENT}
    )

    class Options(LocalProvider.Options):
        model_path: str = Field(default="", description="Path of the .gguf model file.")
        n_ctx: int = Field(default=4096, ge=256, le=262_144, description="Context window.")
        n_threads: int | None = Field(
            default=None, ge=1, le=512, description="CPU threads; default: llama.cpp's choice."
        )
        chat_format: str | None = Field(
            default=None,
            description="llama-cpp-python chat format (e.g. 'chatml'); "
            "default: the chat template stored in the GGUF file.",
        )
        max_tokens: int = Field(
            default=256, ge=1, le=262_144, description="Tokens generated when a call sets none."
        )
        lora_path: str | None = Field(
            default=None,
            description="A LoRA adapter in GGUF form applied on top of the model (the result "
            "of a fine-tuning job).",
        )
        repeat_penalty: float = Field(
            default=1.1, ge=1.0, le=2.0, description="Penalty on repeated tokens (not for agents)."
        )

    options: LlamaCppProvider.Options

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.model_file = _check_gguf(self.options.model_path, self.name)

    def _key(self) -> tuple[str, str, int, int | None, str | None, str | None]:
        o = self.options
        return ("llama-cpp", str(self.model_file), o.n_ctx, o.n_threads, o.chat_format, o.lora_path)

    def _load(self) -> LoadedModel:
        return load_model(self._key(), lambda: _load_llama(self.model_file, self.options))

    def _label(self) -> tuple[str, str, int | None]:
        return self.model_file.stem, f"{self.model_file.name} via llama.cpp", self.options.n_ctx

    def _sampling(self, request: Sampling, *, repeat_penalty: bool = True) -> dict[str, Any]:
        kwargs: dict[str, Any] = {
            "temperature": request.temperature,  # 0 selects llama.cpp's greedy sampler
            "max_tokens": request.max_tokens or self.options.max_tokens,
            "stop": list(request.stop_sequences or []),
            "repeat_penalty": self.options.repeat_penalty if repeat_penalty else 1.0,
        }
        if request.top_p is not None:
            kwargs["top_p"] = request.top_p
        return kwargs

    def context_window(self, model: str) -> int | None:
        return self.options.n_ctx

    def supports_chat(self, model: str) -> bool:
        return True

    def count_tokens(self, model: str, messages: list[Message]) -> int:
        """Exact prompt tokens of a chat call (tokenizing is read-only, so no lock)."""
        entry = self._load()
        llm, formatter = entry.model, entry.extra["formatter"]
        if formatter is not None:
            result = formatter(messages=chat_dicts(messages))
            prompt = result.prompt.encode("utf-8")
            return len(llm.tokenize(prompt, add_bos=not result.added_special, special=True))
        # A named chat format: content tokens plus the usual role-marker overhead.
        return sum(len(llm.tokenize(m.content.encode(), add_bos=False)) + 4 for m in messages) + 2

    async def complete(self, model: str, request: CompletionRequest) -> CompletionResponse:
        kwargs = self._sampling(request)

        def run(entry: LoadedModel) -> CompletionResponse:
            outs = [entry.model.create_completion(prompt=p, **kwargs) for p in request.prompts]
            reasons = [o["choices"][0]["finish_reason"] for o in outs]
            return CompletionResponse(
                completions=[
                    (p, [o["choices"][0]["text"]])
                    for p, o in zip(request.prompts, outs, strict=True)
                ],
                finish_reason="length" if "length" in reasons else reasons[-1],
                prompt_tokens=sum(o["usage"]["prompt_tokens"] for o in outs),
                response_tokens=sum(o["usage"]["completion_tokens"] for o in outs),
            )

        return await self._run(run)

    async def chat(self, model: str, request: ChatCompletionRequest) -> ChatCompletionResponse:
        kwargs = self._sampling(request)
        messages = chat_dicts(request.messages)

        def run(entry: LoadedModel) -> ChatCompletionResponse:
            out = entry.model.create_chat_completion(messages=messages, **kwargs)
            choice = out["choices"][0]
            return ChatCompletionResponse(
                message=Message(role="assistant", content=choice["message"]["content"] or ""),
                finish_reason=choice["finish_reason"],
                prompt_tokens=out["usage"]["prompt_tokens"],
                response_tokens=out["usage"]["completion_tokens"],
            )

        return await self._run(run)

    @staticmethod
    def _tokens(entry: LoadedModel, text: str, *, prompt: bool) -> int:
        """Tokens of ``text`` as llama.cpp counts them (a prompt gets its BOS token)."""
        if not text:
            return 0
        return len(entry.model.tokenize(text.encode("utf-8"), add_bos=prompt, special=prompt))

    async def stream_complete(self, model: str, request: CompletionRequest) -> ChunkStream:
        kwargs = self._sampling(request)

        def produce(entry: LoadedModel) -> Iterator[StreamChunk]:
            reasons: list[str | None] = []
            prompt_tokens = response_tokens = 0
            for index, prompt in enumerate(request.prompts):
                parts: list[str] = []
                reason = None
                for out in entry.model.create_completion(prompt=prompt, stream=True, **kwargs):
                    choice = out["choices"][0]
                    if choice.get("text"):
                        parts.append(choice["text"])
                        yield StreamChunk(text=choice["text"], index=index)
                    reason = choice.get("finish_reason") or reason
                reasons.append(reason)
                prompt_tokens += self._tokens(entry, prompt, prompt=True)
                response_tokens += self._tokens(entry, "".join(parts), prompt=False)
            yield StreamChunk(
                finish_reason="length" if "length" in reasons else reasons[-1],
                prompt_tokens=prompt_tokens,
                response_tokens=response_tokens,
            )

        async with aclosing(self._stream(produce)) as chunks:
            async for chunk in chunks:
                yield chunk

    async def stream_chat(self, model: str, request: ChatCompletionRequest) -> ChunkStream:
        kwargs = self._sampling(request)
        messages = chat_dicts(request.messages)

        def produce(entry: LoadedModel) -> Iterator[StreamChunk]:
            parts: list[str] = []
            reason = None
            outs = entry.model.create_chat_completion(messages=messages, stream=True, **kwargs)
            for out in outs:
                choice = out["choices"][0]
                piece = (choice.get("delta") or {}).get("content")
                if piece:
                    parts.append(piece)
                    yield StreamChunk(text=piece)
                reason = choice.get("finish_reason") or reason
            yield StreamChunk(
                finish_reason=reason,
                prompt_tokens=self.count_tokens(model, request.messages),
                response_tokens=self._tokens(entry, "".join(parts), prompt=False),
            )

        async with aclosing(self._stream(produce)) as chunks:
            async for chunk in chunks:
                yield chunk

    async def agent(self, model: str, request: AgentRequest) -> AgentResponse:
        """Offline tool use: a JSON grammar constrains the reply to one action."""
        kwargs = self._sampling(request, repeat_penalty=False)  # JSON repeats by nature
        messages = chat_dicts(agent_messages(request))
        tool_names = [t.name for t in request.tools]

        def run(entry: LoadedModel) -> AgentResponse:
            grammar = _agent_grammar(request.tools)
            out = entry.model.create_chat_completion(messages=messages, grammar=grammar, **kwargs)
            text = out["choices"][0]["message"]["content"] or ""
            action, context = parse_agent_reply(text, tool_names, provider=self.name)
            return AgentResponse(
                action=action,
                context=context,
                prompt_tokens=out["usage"]["prompt_tokens"],
                response_tokens=out["usage"]["completion_tokens"],
            )

        return await self._run(run)


# -- agent: prompt, grammar, reply ----------------------------------------------------

TOOL_FORMAT = (
    'Reply with one JSON object and nothing else: {"action": "tool_request", "tool": '
    '<tool name>, "arguments": {...}} to call a tool, or {"action": "content", '
    '"content": <your answer>} to answer the user directly.'
)
CONTENT_FORMAT = 'Reply with one JSON object: {"action": "content", "content": <your answer>}.'


def agent_messages(request: AgentRequest) -> list[Message]:
    """A system prompt (instructions, tools, reply format) plus the remembered turns.

    ``last_k`` keeps the last k non-system messages; system messages join the
    system prompt.
    """
    turns = [m for m in request.messages if m.role != "system"]
    if request.memory_strategy is not None:
        turns = turns[-request.memory_strategy.params.get("k", 10) :]
    parts = [request.instructions or "You are a helpful assistant."]
    parts += [m.content for m in request.messages if m.role == "system"]
    if request.tools:
        parts.append("You can call these tools:")
        parts += [
            f"- {t.name}: {t.description} Arguments (JSON Schema): {json.dumps(t.arguments)}"
            for t in request.tools
        ]
    parts.append(TOOL_FORMAT if request.tools else CONTENT_FORMAT)
    return [Message(role="system", content="\n".join(parts)), *turns]


def agent_schema(tools: list[Tool], *, loose: bool = False) -> dict[str, Any]:
    """JSON Schema of a reply: one branch per tool (with its arguments) or content."""
    branches: list[dict[str, Any]] = [
        {
            "type": "object",
            "properties": {
                "action": {"const": "tool_request"},
                "tool": {"const": t.name},
                "arguments": {"type": "object"} if loose else t.arguments,
            },
            "required": ["action", "tool", "arguments"],
        }
        for t in tools
    ]
    content = {"action": {"const": "content"}, "content": {"type": "string"}}
    branches.append({"type": "object", "properties": content, "required": list(content)})
    return {"oneOf": branches} if len(branches) > 1 else branches[0]


def _agent_grammar(tools: list[Tool]) -> Any:
    """The reply grammar; if the converter rejects a tool's argument schema ($ref, ...),
    arguments fall back to any JSON object."""
    from llama_cpp import LlamaGrammar

    try:
        return LlamaGrammar.from_json_schema(json.dumps(agent_schema(tools)), verbose=False)
    except Exception:
        loose = json.dumps(agent_schema(tools, loose=True))
        return LlamaGrammar.from_json_schema(loose, verbose=False)


_CUT_CONTENT = re.compile(r'\s*\{\s*"action"\s*:\s*"content"\s*,\s*"content"\s*:\s*"(.*)', re.S)


def _partial_json_string(body: str) -> str:
    for cut in range(min(len(body), 6) + 1):  # drop a half-written escape at the end
        try:
            return str(json.loads(f'"{body[: len(body) - cut]}"'))
        except json.JSONDecodeError:
            continue
    return body


def parse_agent_reply(
    text: str, tool_names: list[str], *, provider: str
) -> tuple[AgentAction, ActionContext]:
    """Map the model's JSON reply to an agent action."""
    try:
        data = json.loads(text)
        if not isinstance(data, dict):
            raise json.JSONDecodeError("not a JSON object", text, 0)
    except json.JSONDecodeError as exc:
        if cut := _CUT_CONTENT.match(text):  # max_tokens ran out inside the answer
            return AgentAction.CONTENT, ActionContext(content=_partial_json_string(cut[1]))
        raise ProviderUnavailableError(
            "the model's reply ended before its JSON action was complete",
            provider=provider,
            provider_message=text[:200],
            hint="Raise max_tokens.",
        ) from exc
    if data.get("action") == "tool_request":
        name, arguments = data.get("tool"), data.get("arguments")
        if name not in tool_names or not isinstance(arguments, dict):
            raise ProviderUnavailableError("the model asked for an unknown tool", provider=provider)
        call = ToolRequest(name=name, arguments=arguments, id=f"call_{uuid.uuid4().hex[:12]}")
        return AgentAction.TOOL_REQUEST, ActionContext(tool_request=call)
    return AgentAction.CONTENT, ActionContext(content=str(data.get("content", "")))
