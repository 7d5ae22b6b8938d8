"""Memory budgets: what an action will allocate, estimated before it allocates, against what the machine has.

Each flag is range-checked alone (core.ranges), but their products are not: block x emb x hidden,
K grid copies x the model, batch x vocabulary, words x block. Some in-range combinations would
ask for tens of GB: a traceback after a long wait, or the kernel's OOM killer. So each action
that allocates in proportion to such a product adds up what it needs here first (arithmetic on
the sizes: microseconds), and compares it with what the machine has (core.memory). Too much is
refused in one line that names the biggest product, the total and the limit.

Each estimate is conservative (above the measured peak, within ~2x: tests/test_faults_memory.py
measures a few) and counts every buffer and copy of the code it stands for; the shape comments
say which. Free of torch.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from core import memory
from core.jobs import chunk_for
from core.config import ModelConfig, TrainConfig
from core.errors import ConfigError

F32, I64, F64 = 4, 8, 8  # bytes per float32, int64, float64 element
MiB, GiB = memory.MiB, memory.GiB
CHECK_FROM = 64 * MiB  # below this nothing is read from the system: the fast path stays arithmetic
EVAL_CHUNK_BYTES = 32 * MiB  # one forward pass of evaluation or sampling stays under this
EVAL_MAX_ROWS = 65536  # and under this many rows (more gains nothing in speed)
THREAD_BYTES = 16 * MiB  # what a thread that joins the work touches: measured ~8-16 MiB with torch's BLAS
PACKED_ROWS_MAX_BYTES = 64 * MiB  # core.dataset.pack: larger training splits are not packed (16M examples at block 3)
DATASET_CHUNK_WORDS = 1 << 16  # words whose examples core.dataset gathers at a time: bounds its index vectors
GRID_THREADS = 2  # threads for the LR grid's K models where the machine has them (core.grid runs them)

# copies of the parameters alive during a run: the model, the state kept for undo (Trainer.state),
# and the parameters of the two chunks kept for a rollback (core.rollback.KeptChunks)
RUN_COPIES = 4
RUN_COPIES_WHY = "the model, its undo copy, 2 kept for a rollback"


class MemoryBudgetError(ConfigError):
    """An action that would need more memory than the machine has; refused before it allocates."""


@dataclass(frozen=True)
class Need:
    """One product of sizes and the bytes it allocates, all its copies and buffers included."""

    text: str  # the product in words: "block 64 x emb 1024 x hidden 16384 = 1.07e9 first-layer weights x 4 B x …"
    bytes: int
    hint: str  # what to make smaller: "choose a smaller --hidden, --emb-dim or --block-size"


def size(n: float) -> str:
    """Bytes in words: '12.0 GiB', '310 MiB', '17 KiB'."""
    if n >= GiB:
        return f"{n / GiB:.1f} GiB"
    if n >= MiB:
        return f"{n / MiB:.0f} MiB"
    return f"{n / 1024:.0f} KiB"


def count(n: int) -> str:
    """An element count: '196,113' up to millions, '1.07e9' beyond."""
    if n < 10_000_000:
        return f"{n:,}"
    mantissa, exponent = f"{n:.2e}".split("e")
    return f"{mantissa}e{int(exponent)}"


def _need(factors: str, n: int, what: str, each: int, copies: int = 1, why: str = "", hint: str = "") -> Need:
    """factors = n what, x each bytes [x copies (why)]."""
    times = f" x {copies} ({why})" if copies > 1 else ""
    return Need(f"{factors} = {count(n)} {what} x {each} B{times} = {size(n * each * copies)}", n * each * copies, hint)


def check(action: str, needs: Sequence[Need]) -> None:
    """Refuse `action` in one line if its needs add up to more than is available."""
    total = sum(n.bytes for n in needs)
    if total < CHECK_FROM:
        return
    have = memory.available()
    if total <= have.bytes:
        return
    biggest = max(needs, key=lambda n: n.bytes)
    in_all = f"; {size(total)} in all" if len(needs) > 1 else ""
    raise MemoryBudgetError(f"not enough memory for {action}: {biggest.text}{in_all}, more than the {size(have.bytes)} "
                            f"available ({have.source}); {biggest.hint}")


# ---- estimates, one per thing that allocates ---------------------------------------------------
def threads_needs(threads: int) -> list[Need]:
    """--threads N: each of torch's threads maps a stack and an allocator arena (a libgomp thread that
    cannot get them ends the process with no message of ours)."""
    return [_need(f"--threads {threads}", threads, "threads", THREAD_BYTES, hint="choose fewer --threads")]


DATASET_HINT = "choose a smaller --block-size, or a words file with fewer or shorter words"


def dataset_build_bytes(n_examples: int, n_words: int, block_size: int) -> int:
    """Peak of core.dataset.build_examples for one split of n_examples (= its characters + words):
    X (N, T) and Y (N,) int64 at their final size; beside them the padded text of the words
    (chars + W T characters) twice as str and once as bytes, up to 2 bytes a character (4 for
    characters past U+FFFF); ~20 int64s a word (its length, segment start, example count and
    their temporaries; the words' list copied by the split and joined for the digest); one
    chunk's int64 index vectors and its
    windows, which the allocator keeps for the next chunk (measured: 37 bytes an example in all
    at block 3 / 1M words, 155 at block 16 / 100k; it was 91 and 296)."""
    T = block_size
    text = n_examples + n_words * T
    chunk = min(n_examples, DATASET_CHUNK_WORDS * -(-n_examples // max(n_words, 1)))  # words of average length
    return I64 * n_examples * (T + 1) + 6 * text + 20 * I64 * n_words + (5 * I64 + T + 1) * chunk


def dataset_rest_bytes(n_examples: int, block_size: int) -> int:
    """A built split at rest: X (N, T) and Y (N,) int64."""
    return I64 * n_examples * (block_size + 1)


def packed_rows_bytes(n_train: int, block_size: int) -> int:
    """The training split's ids once more, one byte each (core.dataset.pack), made after the splits
    beside what their builds' allocator kept: at most PACKED_ROWS_MAX_BYTES."""
    n_bytes = n_train * (block_size + 1)
    return n_bytes if n_bytes <= PACKED_ROWS_MAX_BYTES else 0


def split_sizes(n_words: int, n_chars: int, fractions: tuple[float, float, float]) -> list[tuple[int, int]]:
    """(words, examples) per split as core.dataset.split_words cuts them; characters shared out in
    proportion to the words (the shuffle decides which), rounded up."""
    n1, n2 = int(fractions[0] * n_words), int((fractions[0] + fractions[1]) * n_words)
    out = []
    for w in (n1, n2 - n1, n_words - n2):
        chars = -(-n_chars * w // n_words) if n_words else 0
        out.append((w, chars + w))
    return out


def dataset_needs(n_words: int, n_chars: int, block_size: int, fractions: tuple[float, float, float]) -> list[Need]:
    """Building the three splits one after the other: the peak is one split's build beside the
    splits built before it, at rest."""
    sizes = split_sizes(n_words, n_chars, fractions)
    peak, rest = 0, 0
    for words, examples in sizes:
        peak = max(peak, rest + dataset_build_bytes(examples, words, block_size))
        rest += dataset_rest_bytes(examples, block_size)
    peak += packed_rows_bytes(sizes[0][1], block_size)
    n = sum(e for _, e in sizes)
    each = -(-peak // max(1, n))
    return [Need(f"{count(n_words)} words + their {count(n_chars)} characters = {count(n)} examples x block {block_size}"
                 f", {each:,} B each to build = {size(peak)}", peak, DATASET_HINT)]


def trainer_needs(model: ModelConfig, vocab_size: int, train: TrainConfig) -> list[Need]:
    """A Trainer through a run (core.trainer, core.step.SGDStep): the parameters RUN_COPIES times,
    the step's buffers, and one chunk of minibatches."""
    T, E, H, V = model.block_size, model.emb_dim, model.hidden, vocab_size
    B = train.batch_size
    k = chunk_for(train.chunk_steps, model.n_params(V), B)  # what Trainer.run takes a chunk at a time
    copies, why = RUN_COPIES, RUN_COPIES_WHY
    return [
        # W1 ((T+1)E, H) with b1 and the constant token's rows (SGDStep.W1b)
        _need(f"(block {T} + 1) x emb {E} x hidden {H} + {H}", (T + 1) * E * H + H, "first-layer weights", F32, copies, why,
              "choose a smaller --hidden, --emb-dim or --block-size"),
        # W2 (H+1, V) with b2 (SGDStep.W2b)
        _need(f"(hidden {H} + 1) x vocabulary {V:,}", (H + 1) * V, "output weights", F32, copies, why,
              "choose a smaller --hidden, or a words file with fewer distinct characters"),
        # C (V+1, E) (SGDStep.C_ext)
        _need(f"(vocabulary {V:,} + 1) x emb {E}", (V + 1) * E, "embedding weights", F32, copies, why,
              "choose a smaller --emb-dim, or a words file with fewer distinct characters"),
        # emb / x and dx: (B, (T+1)E) each
        _need(f"batch {B} x (block {T} + 1) x emb {E}", B * (T + 1) * E, "first-layer inputs", 2 * F32, 1, "",
              "choose a smaller --batch-size, --block-size or --emb-dim"),
        # z2, sig, h1, minus_ones, dh, dz: (B, H+1) each
        _need(f"batch {B} x (hidden {H} + 1)", B * (H + 1), "hidden activations", 6 * F32, 1, "",
              "choose a smaller --batch-size or --hidden"),
        # logits, dlogits (V, B); and per chunk the log-probabilities (k, V, B) (SGDStep.run)
        _need(f"({k} step{'s' * (k != 1)} per chunk + 2) x batch {B} x vocabulary {V:,}", (k + 2) * B * V, "logits", F32, 1, "",
              "choose a smaller --batch-size, or a words file with fewer distinct characters"),
        # per chunk: ix (k, B), X (k, B, T) and Y (k, B) drawn, three chunks alive (two kept for a
        # rollback and the next), the token ids (k, B, T+1): int64
        _need(f"{k} step{'s' * (k != 1)} per chunk x batch {B} x (block {T} + 1)", k * B * (T + 1), "minibatch ids", 5 * I64, 1, "",
              "choose a smaller --batch-size or --block-size"),
    ]


def eval_row_bytes(block_size: int, emb_dim: int, hidden: int, vocab_size: int) -> int:
    """One row of core.model.forward_logits and what follows it: emb (T*E,), x @ W1, + b1 and tanh
    (3H,), h @ W2, + b2 and log_softmax / softmax (3V,), float32; one more V for multinomial."""
    return F32 * (block_size * emb_dim + 3 * hidden + 4 * vocab_size)


def eval_chunk_rows(block_size: int, emb_dim: int, hidden: int, vocab_size: int) -> int:
    """Rows per forward pass so that one pass stays under EVAL_CHUNK_BYTES (at least one row)."""
    return max(1, min(EVAL_MAX_ROWS, EVAL_CHUNK_BYTES // eval_row_bytes(block_size, emb_dim, hidden, vocab_size)))


def evaluation_needs(examples: Sequence[int], model: ModelConfig, vocab_size: int) -> list[Need]:
    """Exact evaluation (core.evaluate): the distinct-context counts of every split, kept: contexts
    (U, T) and the pairs' context, target and count (P,) each, U, P <= N, int64 / float64; the
    transient peak of counting the largest split: keys, sort and inverse (N,) several times; the
    bigram baseline's keys (N,) likewise; one forward pass, at most EVAL_CHUNK_BYTES."""
    T, E, H, V = model.block_size, model.emb_dim, model.hidden, vocab_size
    n, largest = sum(examples), max(examples, default=0)
    counted = n * (T + 3) * I64 + largest * 12 * I64
    distinct = min(largest, V**T if T * V.bit_length() < 64 else largest)  # contexts: no more than examples or V**T
    # one pass, twice: freed passes leave the allocator's heap that much larger (measured 1.2-1.8x of one)
    chunk = 2 * min(EVAL_CHUNK_BYTES, distinct * eval_row_bytes(T, E, H, V))
    return [Need(f"{count(n)} examples x block {T} to count for evaluation = {size(counted)}, and {size(chunk)} "
                 f"for its forward passes", counted + chunk, DATASET_HINT)]


def opening_needs(model: ModelConfig, vocab_size: int, train: TrainConfig, examples: Sequence[int]) -> list[Need]:
    """After the build: the splits at rest, a Trainer through a run, and exact evaluation."""
    T = model.block_size
    n = sum(examples)
    at_rest = dataset_rest_bytes(n, T) + packed_rows_bytes(examples[0] if examples else 0, T)
    rest = Need(f"{count(n)} examples x block {T} = {count(n * (T + 1))} ids x {I64} B, the training split's again x 1 B "
                f"= {size(at_rest)}", at_rest, DATASET_HINT)
    return [rest, *trainer_needs(model, vocab_size, train), *evaluation_needs(examples, model, vocab_size)]


def grid_needs(models: int, block_size: int, emb_dim: int, hidden: int, vocab_size: int, batch_size: int,
               chunk_steps: int, native: bool) -> list[Need]:
    """core.grid: K copies of the parameters; with batched torch ops (BatchedSGD) the step's buffers
    K times over; on the native kernel (NativeGrid) its padded copy and buffers per thread instead."""
    K, T, E, H, V, B, k = models, block_size, emb_dim, hidden, vocab_size, batch_size, chunk_steps
    n_params = V * E + T * E * H + H + H * V + V
    hint = "choose a smaller K (grid START END K STEPS)"
    needs = [_need(f"grid K {K} x {count(n_params)} parameters", K * n_params, "weights", F32,
                   hint=hint + " or a smaller model")]
    if native:  # per thread (2), core.native's sgd_chunk: a copy of the weights and one step's
        # activations (2 TE + 3 H + 2 V per example), every dimension but TE padded to 16 floats
        Bp, Hp, Vp = (-(-n // 16) * 16 for n in (B, H, V))
        per_thread = T * E * Hp + Hp * Vp + Hp + 3 * Vp + Bp * (2 * T * E + 3 * Hp + 2 * Vp)
        needs.append(_need(f"2 threads x (weights + batch {B} x (block {T} x emb {E} + hidden {H} + vocabulary {V:,}))",
                           2 * per_thread, "native buffers", F32, hint=hint))
    else:  # emb, dx (K, B, T*E); z2, sig, h, minus_ones, dh, dz (K, B, H); logits, logp, dlogits (K, B, V)
        needs += [
            _need(f"grid K {K} x batch {B} x vocabulary {V:,}", K * B * V, "logits", 3 * F32,
                  hint=hint + ", or a smaller --batch-size"),
            _need(f"grid K {K} x batch {B} x (2 x block {T} x emb {E} + 6 x hidden {H})", K * B * (2 * T * E + 6 * H),
                  "activations", F32, hint=hint + ", or a smaller --batch-size"),
        ]
    # the grid's threads (core.grid.GRID_THREADS): their stacks, allocator arenas and BLAS workspaces
    needs.append(Need(f"{GRID_THREADS} threads' stacks and workspaces = {size(GRID_THREADS * THREAD_BYTES)}",
                      GRID_THREADS * THREAD_BYTES, hint))
    # per chunk: X (k, B, T), Y and ix (k, B) int64, its (k, K, B) float losses
    needs.append(_need(f"{k} steps per chunk x batch {B} x (block {T} + 2 + grid K {K})", k * B * (T + 2 + K),
                       "minibatch ids and losses", I64, hint=hint + ", or a smaller --batch-size"))
    return needs


def sweep_needs(n_params: int, block_size: int, vocab_size: int, batch_size: int, chunk_steps: int) -> list[Need]:
    """core.sweep: a copy of the parameters to put back, one chunk of minibatches (k, B, T+1)
    int64 with the token ids, its log-probabilities (k, V, B) float32."""
    T, V, B, k = block_size, vocab_size, batch_size, chunk_steps
    return [
        _need(f"{count(n_params)} parameters", n_params, "weights", F32, hint="choose a smaller model"),
        _need(f"{k} steps per chunk x batch {B} x vocabulary {V:,}", k * B * V, "logits", F32,
              hint="choose a smaller --batch-size, or a words file with fewer distinct characters"),
        _need(f"{k} step{'s' * (k != 1)} per chunk x batch {B} x (block {T} + 1)", k * B * (T + 1), "minibatch ids", 3 * I64,
              hint="choose a smaller --batch-size or --block-size"),
    ]
