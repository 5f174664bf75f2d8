"""The summarize branch: plan a strategy, then stuff, map-reduce (with collapse) or refine.

Map and collapse tasks fan out with `Send` and write their results keyed by level and
position, so a run resumed on its thread redoes none of the finished ones; map
results are also cached across runs by chunk text, map prompt version and model.
A step sends at most as many map tasks as the run's thread pool starts at once, and
work in flight is bounded by a per-run slot (see `nodes/concurrency.py`), so each
finished task's checkpoint write lands as it finishes rather than after the step.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import re
from collections.abc import Callable
from typing import Any

from langchain_core.language_models import BaseChatModel
from langchain_core.messages import HumanMessage, SystemMessage
from langgraph.config import get_stream_writer
from langgraph.runtime import Runtime
from langgraph.types import interrupt

from adaptsum import prompts
from adaptsum.engines.factory import chat_model_for, index_for, resources_for
from adaptsum.engines.language import QUOTED_SUMMARY_INTRO, phrase
from adaptsum.engines.summary import (
    COPY_LIMIT,
    ExtractiveSummarizer,
    LLMSummarizer,
    Shape,
    cited_pages,
    copied_share,
    paragraphs_of,
    repair_citations,
    shape_text,
    summary_citations,
)
from adaptsum.errors import AdaptsumError, InputError
from adaptsum.ingest.fetch import shown_file
from adaptsum.ingest.pages import PageRange
from adaptsum.nodes.answer import reply_language
from adaptsum.nodes.budget import (
    MAX_PAUSES,
    STOPPED,
    parse_decision,
    pause,
    stopped,
    sync_from_state,
)
from adaptsum.nodes.concurrency import fan_out_size, work_slot
from adaptsum.nodes.progress import emit, reset_stage
from adaptsum.nodes.retrieval import check_pages
from adaptsum.nodes.retry import run_deadline
from adaptsum.nodes.turn import end_of_turn
from adaptsum.providers.budget import (
    TokenBudgetExceeded,
    forget_run,
    set_budget,
    spent_of,
    status,
    worst_case,
)
from adaptsum.providers.tokens import count_tokens
from adaptsum.state.context import Context
from adaptsum.state.graph_state import (
    CollapseTask,
    MapTask,
    Partial,
    PartialRef,
    State,
    add_usage,
)
from adaptsum.store.catalog import ChunkRecord, DocumentRecord, chunk_id, parse_chunk_id

_log = logging.getLogger(__name__)

_NARRATIVE = re.compile(
    r"순서대로|흐름|이야기|서사|줄거리|차례로|"
    r"narrative|story|chronolog|step by step|walk me through",
    re.IGNORECASE,
)


def summarizer_for(
    ctx: Context, chat_model: BaseChatModel | None, runtime: Runtime[Context] | None = None
):
    """The summarizer of the configured engine (its calls bounded by the run's deadline)."""
    resources = resources_for(ctx)
    if ctx.engine == "llm":
        deadline = run_deadline(runtime) if runtime is not None else None
        return LLMSummarizer(resources, chat_model or chat_model_for(ctx), deadline)
    return ExtractiveSummarizer(resources)


def _document(state: State, ctx: Context) -> DocumentRecord:
    """The one document to summarize (summaries cite pages of a single document)."""
    index = index_for(ctx)
    documents = index.resolve(state.doc_ids) if state.doc_ids else index.documents()
    if len(documents) == 1:
        return documents[0]
    if not documents:
        raise AdaptsumError("nothing is indexed to summarize")
    # Several documents: the one retrieval points to ("이 문서의 결론은?" names none).
    doc_id = (
        state.retrieved[0]["doc_id"]
        if state.retrieved
        else index.search(state.request, k=1, docs=[d.doc_id for d in documents])[0].document.doc_id
    )
    return index.resolve([doc_id])[0]


def summary_chunks_of(index, document: DocumentRecord, pages: str) -> list[ChunkRecord]:
    """The chunks a summary covers: the document's, or only their text on `pages`.

    A chunk that runs across the range's edge is cut to the part on the range (see
    `PageRange.clip`), so no quote or citation falls outside it; its token count is
    scaled to what is left, for the plan's choice and estimate.
    """
    chunks = index.catalog.document_chunks(index.collection, document.revision)
    if (selected := PageRange.parse(pages)) is None:
        return chunks
    out: list[ChunkRecord] = []
    for chunk in chunks:
        if chunk.page_end < selected.first or chunk.page_start > selected.last:
            continue
        cut = selected.clip(chunk, document)
        if cut.text.strip():
            share = len(cut.text) / max(len(chunk.text), 1)
            out.append(dataclasses.replace(cut, tokens=max(1, round(chunk.tokens * share))))
    return out


def _on_pages(chunk: ChunkRecord, document: DocumentRecord, pages: str | None) -> ChunkRecord:
    """`chunk` cut to its text on `pages` ('' or None: whole)."""
    selected = PageRange.parse(pages)
    return chunk if selected is None else selected.clip(chunk, document)


def _one_of(state: State, ctx: Context, document: DocumentRecord) -> str:
    """The note that says which of several documents a summary covers, and how to choose."""
    count = len(state.doc_ids) or len(index_for(ctx).documents())
    if count < 2:
        return ""
    return (
        f"; a summary covers one document: '{document.title}', the one the request points"
        f" to, of the {count} (name one document to choose)"
    )


def _model_id(ctx: Context, chat_model: BaseChatModel | None) -> str:
    if chat_model is not None:
        return f"{type(chat_model).__name__}:{getattr(chat_model, 'model_name', '')}"
    return f"{ctx.chat_model}@{ctx.chat_base_url}"


def plan_summary(state: State, runtime: Runtime[Context], chat_model=None) -> dict[str, Any]:
    """Choose stuff, map-reduce or refine from the document's size and the request; say why.

    With `pages`, only those pages are summarized (a chapter of a manual): the plan,
    every strategy's input and the citations keep to them.

    Raises:
        InputError: the pages are past the document's end, or hold no text.
    """
    ctx = runtime.context
    index = index_for(ctx)
    document = _document(state, ctx)
    if (selected := PageRange.parse(state.pages)) is not None:
        check_pages(selected, [document])
    chunks = summary_chunks_of(index, document, state.pages)
    if not chunks:
        raise InputError(
            f"pages {state.pages}: no text on these pages of '{document.title}' to summarize"
        )
    tokens = sum(c.tokens for c in chunks)
    focus = state.request if state.request_kind == "whole_document" else ""
    shape = Shape.from_context(ctx, reply_language(state, ctx))
    strategy, reason = _choose(state, ctx, tokens, len(chunks))
    plan = {
        "doc_id": document.doc_id,
        "title": document.title,
        "pages": state.pages,
        "strategy": strategy,
        "reason": reason,
        "chunks": len(chunks),
        "document_tokens": tokens,
        "focus": focus,
        "engine": ctx.engine,
        "language": shape.language,
        "reduce_budget": ctx.reduce_budget,
        "max_collapse_levels": ctx.max_collapse_levels,
        "fan_out": fan_out_size(),
        **_estimate(ctx, chat_model, strategy, chunks, shape),
    }
    sync_from_state(state, runtime)
    plan["spent_before"] = spent_of(runtime)
    plan.update(approve_plan(state, runtime, plan))
    for stage in ("map", "refine", "stuff"):
        reset_stage(runtime, stage)
    get_stream_writer()(
        {
            "kind": "summary",
            "stage": "plan",
            "done": 0,
            "total": len(chunks),
            "pages": [],
            "tokens": 0,
            "eta_s": None,
            "strategy": strategy,
        }
    )
    return {
        "token_budget": plan.get("approved_max_tokens") or state.token_budget,
        "summary_revision": document.revision,
        "summary_file": shown_file(document.source),
        "summary_first_chunk": chunks[0].index,
        "summary_chunks": len(chunks),
        "summary_plan": plan,
        "partials": None,  # clears them (see merge_partials)
        "refine_step": 0,
        "refine_summary": None,
        "route": "summarize",
        "route_reason": f"{state.request_reason}; "
        + (f"pages {state.pages} only; " if state.pages else "")
        + f"{strategy}: {reason}"
        + _one_of(state, ctx, document),
    }


def approve_plan(state: State, runtime: Runtime[Context], plan: dict) -> dict[str, Any]:
    """Pause the run (a LangGraph `interrupt`) when the plan needs a person's decision.

    It pauses when the plan's estimate would take the turn past `max_tokens`, or
    always when `approve_plan` is set. The interrupt's value says what was spent and
    what the rest needs; Studio shows it and a client resumes with
    `Command(resume=...)`: `true` (go on), `{"max_tokens": N}` (go on with a new budget)
    or `false` (stop: the turn ends with the plan, and no model is called).
    On resume LangGraph runs this node again from the start; planning is cheap.

    Raises:
        InputError: a resume value that is none of those.
    """
    ctx = runtime.context
    budget = state.token_budget or ctx.max_tokens
    spent = plan["spent_before"]
    over = budget > 0 and spent + plan["estimated_tokens"] > budget
    if state.dry_run or not (over or ctx.approve_plan):
        return {}
    decision = interrupt(
        {
            "kind": "budget" if over else "approve_plan",
            "question": (
                f"the plan needs about {plan['estimated_tokens']} tokens and {spent} are "
                f"spent, over the budget of {budget}: resume with {{'max_tokens': N}}, "
                "true or false"
                if over
                else "summarize with this plan? resume with true, false or {'max_tokens': N}"
            ),
            "strategy": plan["strategy"],
            "planned_calls": plan["planned_calls"],
            "estimated_tokens": plan["estimated_tokens"],
            "spent": spent,
            "max_tokens": budget,
        }
    )
    decision = parse_decision(decision)
    if decision is True:
        return {}
    if decision is False:
        return {"stopped": True}
    set_budget(runtime, decision)
    return {"approved_max_tokens": decision}


def _choose(state: State, ctx: Context, tokens: int, chunks: int) -> tuple[str, str]:
    if state.strategy != "auto":
        return state.strategy, "requested"
    if tokens <= ctx.stuff_budget:
        whose = (
            f"the {tokens} tokens of pages {state.pages}"
            if state.pages
            else f"the document's {tokens} tokens"
        )
        return "stuff", f"{whose} fit the {ctx.stuff_budget}-token budget"
    if _NARRATIVE.search(state.request) and chunks <= ctx.refine_max_chunks:
        return "refine", f"a narrative request over {chunks} chunks: one sequential pass"
    return "map_reduce", (
        f"{tokens} tokens exceed the {ctx.stuff_budget}-token budget: map {chunks} chunks in "
        "parallel, then reduce"
    )


def _estimate(
    ctx: Context,
    chat_model: BaseChatModel | None,
    strategy: str,
    chunks: list[ChunkRecord],
    shape: Shape,
) -> dict[str, int]:
    """Model calls and tokens the plan will use (0 for the extractive engine)."""
    if ctx.engine != "llm":
        return {"planned_calls": 0, "estimated_tokens": 0}
    system = count_tokens(prompts.REDUCE_SYSTEM) + 20
    out = shape.output_tokens()
    tokens = sum(c.tokens for c in chunks)
    if strategy == "stuff":
        return {"planned_calls": 1, "estimated_tokens": int(system + tokens * 1.02 + out)}
    if strategy == "refine":
        calls = len(chunks)
        total = sum(system + c.tokens * 1.02 + out for c in chunks) + out * (calls - 1)
        return {"planned_calls": calls, "estimated_tokens": int(total)}
    # map_reduce: map every chunk, collapse level by level while over budget, reduce
    summarizer = LLMSummarizer(resources_for(ctx), chat_model)
    map_tokens = sum(summarizer.map_cost(c) for c in chunks)
    partial = summarizer.map_output_tokens()
    sizes = [partial] * len(chunks)
    calls, collapse_tokens = len(chunks), 0
    for _ in range(ctx.max_collapse_levels):
        if sum(sizes) <= ctx.reduce_budget or len(sizes) < 2:
            break
        groups = _pack(sizes, ctx.reduce_budget)
        calls += len(groups)
        sizes = []
        for group in groups:
            condensed = max(160, sum(group) // (2 * len(group)) * 2 * 4 // 3)
            collapse_tokens += system + sum(group) + condensed
            sizes.append(condensed)
    calls += 1
    reduce_tokens = system + sum(sizes) + out
    return {
        "planned_calls": calls,
        "estimated_tokens": int(map_tokens + collapse_tokens + reduce_tokens),
    }


def _pack(sizes: list[int], budget: int) -> list[list[int]]:
    """Consecutive groups of at most `budget` tokens (at least two items where possible)."""
    groups: list[list[int]] = [[]]
    for size in sizes:
        if groups[-1] and sum(groups[-1]) + size > budget and len(groups[-1]) >= 2:
            groups.append([])
        groups[-1].append(size)
    return groups


def _files(state: State) -> dict[str, str]:
    """The summarized document's file name by revision, for `DocumentIndex.live_chunks`."""
    return {state.summary_revision: state.summary_file}


def summary_chunk_ids(state: State) -> list[str]:
    """Ids of the summarized document's chunks, in order (derived: state stays small)."""
    first = state.summary_first_chunk
    return [chunk_id(state.summary_revision, i) for i in range(first, first + state.summary_chunks)]


def map_tasks(state: State) -> list[MapTask]:
    """One task per chunk not mapped yet, at most `fan_out` of them (the next round).

    A resumed run skips the finished ones; the rest come in later rounds from the
    collapse gate, so no task waits in the thread pool ahead of a finished one's write.
    """
    todo = [
        MapTask(
            chunk_id=chunk_id,
            order=order,
            total=state.summary_chunks,
            focus=state.summary_plan.get("focus", ""),
            file=state.summary_file,
            pages=state.pages,
        )
        for order, chunk_id in enumerate(summary_chunk_ids(state))
        if _level_key(0, order) not in state.partials
    ]
    size = state.summary_plan.get("fan_out", len(todo))
    if state.summary_plan.get("wave"):  # what the budget gate found room for
        size = min(size, state.summary_plan["wave"])
    return todo[: max(1, size)]


def _level_key(level: int, order: int) -> str:
    return f"{level}:{order:05d}"


def map_chunk(task: MapTask, runtime: Runtime[Context], chat_model=None) -> dict[str, Any]:
    """Summarize one chunk, or take its summary from the cache when seen before."""
    ctx = runtime.context
    index = index_for(ctx)
    chunk = index.live_chunks(
        [task["chunk_id"]], {parse_chunk_id(task["chunk_id"])[0]: task.get("file", "")}
    )[task["chunk_id"]]
    document = index.resolve([chunk.doc_id])[0]
    chunk = _on_pages(chunk, document, task.get("pages"))
    key = _level_key(0, task["order"])
    cache_key = _map_cache_key(ctx, chat_model, chunk, task["focus"])
    use_cache = ctx.engine == "llm" and ctx.map_cache
    cached = index.catalog.cached_map(cache_key) if use_cache else None
    usage: dict = {}
    if cached is not None:
        body = load_partial(ctx, PartialRef(key=key, ref=cached, pages=[], tokens=0))
        ref = PartialRef(key=key, ref=cached, pages=body["pages"], tokens=body["tokens"])
    else:
        summarizer = summarizer_for(ctx, chat_model, runtime)
        with work_slot(runtime, ctx.concurrency):  # the call reserves its own worst case
            partial, usage = summarizer.map(chunk, document, task["focus"], key)
        ref = store_partial(ctx, partial)
        _log.info("mapped chunk %d of %d", task["order"] + 1, task["total"])
        if use_cache:
            index.catalog.put_cached_map(cache_key, ref["ref"])
    emit(runtime, "map", task["total"], [chunk.page_start, chunk.page_end], finished=True)
    return {"partials": {key: ref}, "usage": usage}


def _map_cache_key(
    ctx: Context, chat_model: BaseChatModel | None, chunk: ChunkRecord, focus: str
) -> str:
    """Map results are reused across runs by chunk text, map settings, focus and model."""
    digest = hashlib.sha256(chunk.text.encode()).hexdigest()
    settings = (
        f"{ctx.map_paragraphs}|{ctx.map_sentences}|{ctx.map_max_tokens}|{prompts.PROMPT_VERSION}"
    )
    return f"{digest}|{settings}|{focus}|{_model_id(ctx, chat_model)}"


def store_partial(ctx: Context, partial: Partial) -> PartialRef:
    """Keep a partial's text in the catalogue; state gets its ref, pages and size."""
    body = json.dumps(
        {
            "text": partial["text"],
            "sentences": partial["sentences"],
            "pages": partial["pages"],
            "tokens": partial["tokens"],
        },
        ensure_ascii=False,
    )
    ref = index_for(ctx).catalog.put_partial(body)
    return PartialRef(key=partial["key"], ref=ref, pages=partial["pages"], tokens=partial["tokens"])


def load_partial(ctx: Context, ref: PartialRef) -> Partial:
    """The full partial a ref points to."""
    body = json.loads(index_for(ctx).catalog.partial(ref["ref"]))
    return Partial(key=ref["key"], **body)


def current_level(partials: dict[str, PartialRef]) -> tuple[int, list[PartialRef]]:
    """The highest level of partials and its partials in document order."""
    if not partials:
        return 0, []
    level = max(int(k.split(":")[0]) for k in partials)
    keys = sorted(k for k in partials if int(k.split(":")[0]) == level)
    return level, [partials[k] for k in keys]


def collapse_gate(state: State, runtime: Runtime[Context], chat_model=None) -> dict[str, Any]:
    """Join point and budget gate before each wave of map or collapse tasks.

    The router sends the next wave; here its worst case (every call's prompt plus its
    output cap) is checked against what is left of the budget first. A map wave that
    does not fit is cut to the tasks that do; when not even one fits (or a collapse
    wave, which must run whole, does not) the run pauses once, for the whole wave,
    with a budget `interrupt` (see `nodes/budget.py`).
    """
    ctx = runtime.context
    plan = state.summary_plan
    if ctx.engine != "llm" or state.route == STOPPED:
        return {}
    sync_from_state(state, runtime)
    approved: dict[str, Any] = {}
    for _ in range(MAX_PAUSES):
        limit, spent, reserved = status(runtime)
        if limit <= 0:  # no budget: nothing to check (and no per-wave cost to compute)
            return {
                **({"summary_plan": {**plan, "wave": 0}} if plan.get("wave") else {}),
                **approved,
            }
        maps, costs, remaining = _next_wave(state, runtime, chat_model)
        left = limit - spent - reserved
        fits = len(costs)
        while fits > 0 and sum(costs[:fits]) > left:
            fits -= 1
        if fits == len(costs) or (maps and fits):  # a map wave may be cut; collapse runs whole
            wave = 0 if fits == len(costs) else fits
            if wave == plan.get("wave", 0):
                return approved
            return {"summary_plan": {**plan, "wave": wave}, **approved}
        what = "wave of map calls" if maps else "wave of collapse calls"
        exc = TokenBudgetExceeded(limit, spent, reserved, sum(costs), what)
        rest = max(remaining, plan["estimated_tokens"] + plan["spent_before"] - spent)
        new = pause(runtime, exc, rest)
        if new is None:
            done = sum(1 for k in state.partials if k.startswith("0:"))
            note = (
                f"No summary was written ({done} of {state.summary_chunks} chunks mapped; "
                "mapped chunks are cached, so asking again with a larger budget reuses them)."
            )
            return {**stopped(state, runtime, exc, note), **approved}
        approved = {"token_budget": new}
    raise InputError(f"{MAX_PAUSES} budget pauses in one step: resume with a larger budget")


def _next_wave(
    state: State, runtime: Runtime[Context], chat_model: BaseChatModel | None
) -> tuple[bool, list[int], int]:
    """Whether the next wave maps, its tasks' worst-case tokens, and all the rest's.

    The rest (every map or collapse still to do) is scaled from the wave's: only the
    wave's own prompts are counted (a long document has many waves). Chunks whose map
    result is cached cost nothing.
    """
    ctx = runtime.context
    index = index_for(ctx)
    summarizer = LLMSummarizer(resources_for(ctx), chat_model)
    plan = state.summary_plan
    focus = plan.get("focus", "")
    if plan.get("strategy") == "map_reduce":
        todo = [
            order
            for order in range(state.summary_chunks)
            if _level_key(0, order) not in state.partials
        ]
        wave = [
            chunk_id(state.summary_revision, o)
            for o in todo[: max(1, plan.get("fan_out") or len(todo))]
        ]
        if wave:
            chunks = index.live_chunks(wave, _files(state))
            documents = {
                d.doc_id: d for d in index.resolve(sorted({c.doc_id for c in chunks.values()}))
            }
            costs = []
            for cid in wave:
                chunk = chunks[cid]
                key = _map_cache_key(ctx, chat_model, chunk, focus)
                if ctx.map_cache and index.catalog.cached_map(key):
                    costs.append(0)
                    continue
                request = summarizer.map_request(chunk, documents[chunk.doc_id], focus)
                costs.append(_worst(request))
            return True, costs, sum(costs) * len(todo) // len(wave)
    costs = []
    for task in collapse_tasks(state):
        partials = [load_partial(ctx, ref) for ref in task["partials"]]
        costs.append(_worst(summarizer.collapse_request(partials, task["language"], task["focus"])))
    return False, costs, sum(costs)


def _worst(request: tuple[str, str, int]) -> int:
    system, user, max_tokens = request
    return worst_case([SystemMessage(system), HumanMessage(user)], max_tokens)


def collapse_tasks(state: State) -> list[CollapseTask]:
    """Groups of consecutive partials to condense, when they exceed the reduce budget.

    The level is the loop's counter: at most `max_collapse_levels` rounds run, whatever
    the graph's recursion limit.
    """
    plan = state.summary_plan
    level, partials = current_level(state.partials)
    if (
        level >= plan["max_collapse_levels"]
        or len(partials) < 2
        or sum(p["tokens"] for p in partials) <= plan["reduce_budget"]
    ):
        return []
    groups = _pack([p["tokens"] for p in partials], plan["reduce_budget"])
    language = plan["language"]
    tasks: list[CollapseTask] = []
    start = 0
    for order, group in enumerate(groups):
        tasks.append(
            CollapseTask(
                partials=partials[start : start + len(group)],
                level=level + 1,
                order=order,
                total=len(groups),
                focus=state.summary_plan.get("focus", ""),
                language=language,
            )
        )
        start += len(group)
    return tasks


def collapse_group(
    task: CollapseTask, runtime: Runtime[Context], chat_model=None
) -> dict[str, Any]:
    """Condense one group of partials into one partial of the next level."""
    ctx = runtime.context
    key = _level_key(task["level"], task["order"])
    partials = [load_partial(ctx, ref) for ref in task["partials"]]
    with work_slot(runtime, ctx.concurrency):  # the call reserves its own worst case
        partial, usage = summarizer_for(ctx, chat_model, runtime).collapse(
            partials, task["language"], task["focus"], key
        )
    _log.info("collapsed group %d of level %d", task["order"] + 1, task["level"])
    emit(runtime, f"collapse {task['level']}", task["total"], partial["pages"][:1], True)
    return {"partials": {key: store_partial(ctx, partial)}, "usage": usage}


def reduce_summary(state: State, runtime: Runtime[Context], chat_model=None) -> dict[str, Any]:
    """The final summary from the top-level partials, in the requested shape and language."""
    ctx = runtime.context
    _, refs = current_level(state.partials)
    partials = [load_partial(ctx, ref) for ref in refs]
    shape = Shape.from_context(ctx, reply_language(state, ctx))
    summarizer = summarizer_for(ctx, chat_model, runtime)
    focus = state.summary_plan.get("focus", "")
    text, usage = summarizer.reduce(partials, shape, focus)
    return _finish(
        state,
        runtime,
        text,
        usage,
        redo=lambda: summarizer.reduce(partials, shape, focus, attempt=1),
    )


def stuff_summary(state: State, runtime: Runtime[Context], chat_model=None) -> dict[str, Any]:
    """The whole document in one call (or one selection, for the extractive engine)."""
    ctx = runtime.context
    index = index_for(ctx)
    document = index.live_revision(state.summary_revision, state.summary_file)
    chunks = summary_chunks_of(index, document, state.pages)
    shape = Shape.from_context(ctx, reply_language(state, ctx))
    summarizer = summarizer_for(ctx, chat_model, runtime)
    focus = state.summary_plan.get("focus", "")
    text, usage = summarizer.stuff(
        chunks,
        document,
        shape,
        focus,
        on_chunk=lambda c: emit(runtime, "stuff", len(chunks), [c.page_start, c.page_end], True),
    )
    return _finish(
        state,
        runtime,
        text,
        usage,
        redo=lambda: summarizer.stuff_attempt(chunks, document, shape, focus, 1),
    )


def refine_chunk(state: State, runtime: Runtime[Context], chat_model=None) -> dict[str, Any]:
    """One step of the refine loop: fold the next chunk into the running summary."""
    ctx = runtime.context
    index = index_for(ctx)
    step = state.refine_step
    chunk_id = summary_chunk_ids(state)[step]
    chunk = index.live_chunks([chunk_id], _files(state))[chunk_id]
    document = index.resolve([chunk.doc_id])[0]
    chunk = _on_pages(chunk, document, state.pages)
    shape = Shape.from_context(ctx, reply_language(state, ctx))
    summarizer = summarizer_for(ctx, chat_model, runtime)
    previous = load_partial(ctx, state.refine_summary) if state.refine_summary else None
    partial, usage = summarizer.refine(  # the call reserves its worst case (budget pause)
        previous, chunk, document, shape, state.summary_plan.get("focus", ""), f"r:{step}"
    )
    emit(runtime, "refine", state.summary_chunks, [chunk.page_start, chunk.page_end], True)
    return {"refine_step": step + 1, "refine_summary": store_partial(ctx, partial), "usage": usage}


def finish_refine(state: State, runtime: Runtime[Context]) -> dict[str, Any]:
    """The refined summary is the answer (the extractive one is laid out in the shape)."""
    ctx = runtime.context
    if state.refine_summary is None:
        raise AdaptsumError("the document has no chunks to summarize")
    summary = load_partial(ctx, state.refine_summary)
    text = summary["text"]
    if ctx.engine != "llm":
        shape = Shape.from_context(ctx, reply_language(state, ctx))
        text = shape_text(summary["sentences"], shape, None)
    return _finish(state, runtime, text, {})


def summary_report(state: State, runtime: Runtime[Context]) -> dict[str, Any]:
    """--dry-run or a stopped plan: the plan, with no model called."""
    plan = state.summary_plan
    text = ("stopped before summarizing. " if plan.get("stopped") else "") + (
        f"plan for {plan['title']} ({plan['doc_id']})"
        + (f", pages {plan['pages']}" if plan.get("pages") else "")
        + f": {plan['strategy']} — {plan['reason']}\n"
        f"{plan['chunks']} chunks, {plan['document_tokens']} tokens; engine {plan['engine']}: "
        f"{plan['planned_calls']} model calls, about {plan['estimated_tokens']} tokens"
    )
    return {"answer": text, "citations": [], **end_of_turn(state, text)}


def _finish(
    state: State,
    runtime: Runtime[Context],
    text: str,
    usage: dict,
    redo: Callable[[], tuple[str, dict]] | None = None,
) -> dict[str, Any]:
    """Check the summary (copying, shape, citations), repair what it can, report the rest.

    A copy of the input is written once more (`redo`, bounded to one); paragraphs
    without a valid page get the page they match best; what remains is reported in
    `route_reason`, never passed as if fine.
    """
    ctx = runtime.context
    index = index_for(ctx)
    document = index.live_revision(state.summary_revision, state.summary_file)
    chunks = summary_chunks_of(index, document, state.pages)
    notes: list[str] = []
    if ctx.engine == "llm":
        source = " ".join(c.text for c in chunks)
        share = copied_share(text, source)
        if share > COPY_LIMIT and redo is not None:
            try:
                again, more = redo()
            except TokenBudgetExceeded as exc:  # keep the first draft; say why
                notes.append(f"copied {share:.0%} of its input; not written again ({exc})")
            else:
                usage = add_usage(usage, more)
                again_share = copied_share(again, source)
                notes.append(f"copied {share:.0%} of its input, so it was written again")
                if again_share < share:
                    text, share = again, again_share
        if share > COPY_LIMIT:
            notes.append(f"still copies {share:.0%} of its input")
        shape = Shape.from_context(ctx, reply_language(state, ctx))
        count = len(paragraphs_of(text))
        if state.summary_plan.get("strategy") != "refine" and count != shape.paragraphs:
            notes.append(f"{count} paragraphs where {shape.paragraphs} were asked for")
        text, repaired = repair_citations(text, document, chunks)
        if repaired:
            notes.append(f"{repaired} of {count} paragraphs had no valid page; adaptsum added one")
    forget_run(runtime)
    citations = summary_citations(text, document, chunks)
    uncited = [
        p
        for p in paragraphs_of(text)
        if not any(1 <= page <= document.total_pages for page in cited_pages(p))
    ]
    if uncited:  # a model may drop citations; say so rather than pass it silently
        notes.append(
            f"{len(uncited)} of {len(paragraphs_of(text))} paragraphs carry no valid page citation"
        )
    language = reply_language(state, ctx)
    if ctx.engine != "llm" and language != document.language:
        text = f"{phrase(QUOTED_SUMMARY_INTRO, language)}\n\n{text}"
    update = {
        "answer": text,
        "citations": citations,
        "usage": usage,
        **end_of_turn(state, text),
    }
    if notes:
        update["route_reason"] = f"{state.route_reason}; summary checks: {'; '.join(notes)}"
    return update
