"""What the worker posts of the Trainer, built on its thread (the UI never reads the live model): the
facts on top of the status panel, and the status the panel, the progress row and the charts draw."""

from __future__ import annotations

from typing import TYPE_CHECKING

from tui.messages import Facts, SnapshotRow, TrainingStatus

if TYPE_CHECKING:
    from core.jobs import Progress
    from core.trainer import Trainer


def facts_of(t: Trainer, bigram_dev: float | None, run_label: str) -> Facts:
    ds, sizes = t.dataset, t.dataset.sizes()
    vocab = "".join(ds.vocab.itos(i) for i in range(ds.vocab.size))
    return Facts(ds.source, ds.n_words, vocab, (sizes["train"], sizes["dev"], sizes["test"]), t.model_config,
                 t.n_params, bigram_dev, run_label, t.train_config.batch_size, t.batch_seed)


def status_of(t: Trainer, facts: Facts, progress: Progress | None, *, taken: int, job: str | None,
              last_job: tuple[str, int, int] | None, compiling: bool) -> TrainingStatus:
    from core.model import embedding_2d

    points, kind = embedding_2d(t.params.C)  # a copy: the UI never reads the live parameters
    return TrainingStatus(
        facts=facts, step=t.step, lr_exponent=t.lr_exponent,
        last_loss=progress.loss if progress else t.history.last(),
        last_eval=t.evals[-1] if t.evals else None, history=t.history.view(), evals=tuple(t.evals),
        taken=taken, job=job, last_job=last_job,
        done=progress.done if progress else 0, total=progress.total if progress else 0,
        rate=progress.done / progress.elapsed_s if progress and progress.elapsed_s > 0 else 0.0,
        engine="compiled" if t.compiled else "eager, compiling…" if compiling else "eager",
        can_undo=t.can_undo, embedding=points, embedding_kind=kind,
        snapshots=tuple(SnapshotRow(k.name, k.state.step, k.state.lr_exponent, k.dev_loss) for k in t.snapshots),
        update_ratios=tuple(t.diagnostics.view().recent_ratios(t.lr_exponent).items()),
    )
