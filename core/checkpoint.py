"""Checkpoints: a dict of tensors and plain values, read back with torch.load(weights_only=True).

Written to a temporary file beside the target and renamed over it, so a crash mid-save leaves
the previous checkpoint intact. Nothing in a checkpoint is ever unpickled as an object.

Reading is checked in three layers, each before the next allocates anything in proportion to
what the file claims:
1. the file: opened non-blocking and checked with fstat on the open descriptor (a FIFO, a
   device, a directory or more than MAX_BYTES is refused before a byte is read; torch.load then
   reads that same descriptor);
2. the archive: torch.load allocates each record at the size the zip directory records for it,
   so the directory is checked first: one end record, at the very end, that Python's zipfile and
   torch's miniz both find (no room for the two readers to disagree), at most MAX_RECORDS records,
   each stored uncompressed (a deflated record could claim gigabytes in a few kilobytes), no two
   sharing a name, their sizes adding up to no more than the file; the pickle of the plain values
   at most MAX_PICKLE_BYTES. torch.load then allocates the tensors' storages at the sizes of their
   records (it compares the pickle's claim with the record before allocating), so at most what the
   file holds, plus the unpickled plain values (see MAX_PICKLE_BYTES);
3. the values (core.checkpoint_fields): every field for type, range and finiteness, every tensor for dtype, shape and
   layout (contiguous, from the start of a storage that holds exactly its elements: no expand()
   or as_strided() view claiming more elements than were stored), the minibatch generator's state
   by setting it on a scratch generator. Nothing in a refused checkpoint reaches the Trainer.
"""

from __future__ import annotations

import os
import pickle
import re
import struct
import warnings
import zipfile
from pathlib import Path
from typing import BinaryIO

import torch

from core.errors import CheckpointError
from core.files import replace_atomically
from core.reading import describe_size, open_regular, printable
from core.checkpoint_fields import FORMAT, VERSION, first_line, validate
from core.state import TrainingState

# Generous: the default model's checkpoint is ~25 KB, the history adds 8 bytes a step (a billion
# steps is 8 GB). Loading allocates about the file's size (see the module doc), so this bound only
# refuses the absurd (a sparse file of terabytes) before anything is read.
MAX_BYTES = 16 << 30
# The pickle of the plain values: ~31 bytes an evaluation, so ~500,000 of them (140 hours of
# training at the app's one evaluation a second). Unpickling a crafted one costs up to ~70x its
# size (an empty dict per byte) and ~1 s per 1 MiB before it is refused: ~1.2 GB and ~16 s here.
MAX_PICKLE_BYTES = 16 << 20
MAX_RECORDS = 1024  # torch.save writes 6 records and one per tensor (8 here)
MAX_DIRECTORY_BYTES = 1 << 20  # their zip directory: ~80 bytes a record

_EOCD, _ZIP64_EOCD, _ZIP64_LOCATOR = 0x06054B50, 0x06064B50, 0x07064B50
_STORAGE_RECORD = re.compile(r"[^/]+/data/[0-9]+")  # archive/data/0: a tensor's storage


def save_checkpoint(path: Path, state: TrainingState, exclusive: bool = False) -> None:
    path = Path(path)
    payload = {
        "format": FORMAT,
        "version": VERSION,
        "model": {"block_size": state.model.block_size, "emb_dim": state.model.emb_dim,
                  "hidden": state.model.hidden, "seed": state.model.seed, "init": state.model.init},
        "vocab": state.vocab_chars,
        "params": {k: v.detach().clone() for k, v in state.params.as_dict().items()},
        "step": state.step,
        "lr_exponent": state.lr_exponent,
        "history": {"lr": state.history_lr, "loss": state.history_loss},
        # an evaluation past the step belongs to steps a rollback undid (Trainer.run keeps it): it
        # describes no parameters this checkpoint holds, and loading refuses one
        "evals": [[e.step, e.train, e.dev] for e in state.evals if e.step <= state.step],
        "batch_rng_state": state.batch_rng,
    }
    replace_atomically(path, lambda f: torch.save(payload, f), CheckpointError, "checkpoint", exclusive)


def load_checkpoint(path: Path) -> TrainingState:
    """Read and validate a checkpoint; raise CheckpointError with a one-line reason otherwise."""
    path = Path(path)
    name = printable(os.fspath(path))
    fd, size = open_regular(path, MAX_BYTES, CheckpointError, "checkpoint", name, missing="no such checkpoint file")
    try:
        with open(fd, "rb", closefd=False) as f:  # what was checked is what is read
            _check_archive(name, f, size)
            raw = _unpickle(name, f)
    finally:
        os.close(fd)
    return validate(name, raw)


def _unreadable(name: str, why: str) -> CheckpointError:
    return CheckpointError(f"{name}: not a readable checkpoint ({why}); nothing was loaded")


def _read_at(f: BinaryIO, offset: int, n: int) -> bytes:
    f.seek(offset)
    return f.read(n)


def _check_archive(name: str, f: BinaryIO, size: int) -> None:
    """The zip directory, checked before torch.load allocates what it records (module doc, 2)."""
    try:
        count = _check_directory(name, f, size)
        f.seek(0)
        with zipfile.ZipFile(f) as archive:
            records = archive.infolist()
    except CheckpointError:
        raise
    except (zipfile.BadZipFile, OSError, ValueError, struct.error, EOFError, NotImplementedError) as e:
        raise _unreadable(name, f"truncated or corrupt: {first_line(e)}") from None
    if len(records) != count:  # zipfile reads entries until the directory's bytes end, not `count` of them
        raise _unreadable(name, "its zip directory holds another number of records than its end record says")
    names = [r.filename for r in records]  # shown with !r: escaped
    if len(set(names)) != len(names):
        raise _unreadable(name, "two records share a name")
    if any(n.endswith("/constants.pkl") or n == "constants.pkl" for n in names):
        raise _unreadable(name, "a TorchScript archive, not a checkpoint")
    total = 0
    for r in records:
        if r.compress_type != zipfile.ZIP_STORED or r.compress_size != r.file_size or r.flag_bits & 0x1:
            raise _unreadable(name, f"record {r.filename[:60]!r} is compressed or encrypted; torch.save stores "
                                    "records as they are")
        if r.header_offset + r.file_size > size:
            raise _unreadable(name, f"record {r.filename[:60]!r} runs past the end of the file")
        if r.file_size > MAX_PICKLE_BYTES and not _STORAGE_RECORD.fullmatch(r.filename):
            raise _unreadable(name, f"record {r.filename[:60]!r} holds {describe_size(r.file_size)}, more than "
                                    f"the values of a checkpoint take ({describe_size(MAX_PICKLE_BYTES)})")
        total += r.file_size
    if total > size:  # records that overlap, each claiming the same bytes
        raise _unreadable(name, f"its records claim {describe_size(total)}, more than the file's "
                                f"{describe_size(size)}")


def _check_directory(name: str, f: BinaryIO, size: int) -> int:
    """One end-of-directory record, exactly at the end of the file and without a comment, as
    torch.save writes it: Python's zipfile looks there first and miniz (torch's reader) searches
    backwards from the end, so both read the same directory. Where a zip64 end record is present
    (torch.save writes one) it must sit right before its locator (where zipfile looks) and be the
    one the locator points at (where miniz looks), and agree with the 32-bit record."""
    not_torch = "not a zip archive as torch.save writes them"
    if size < 22:
        raise _unreadable(name, not_torch)
    sig, disk, cd_disk, here, count, cd_size, cd_offset, comment = struct.unpack("<IHHHHIIH",
                                                                                 _read_at(f, size - 22, 22))
    if sig != _EOCD or comment != 0:
        raise _unreadable(name, not_torch)
    end = size - 22
    if size >= 22 + 20 + 56 and _read_at(f, size - 42, 4) == struct.pack("<I", _ZIP64_LOCATOR):
        _, _, located, _ = struct.unpack("<IIQI", _read_at(f, size - 42, 20))
        end = size - 42 - 56
        (sig64, record_size, _, _, disk64, cd_disk64, here64, count64, cd_size64,
         cd_offset64) = struct.unpack("<IQHHIIQQQQ", _read_at(f, end, 56))
        if sig64 != _ZIP64_EOCD or record_size != 44 or located != end:
            raise _unreadable(name, "its zip64 directory record is not where torch.save puts it")
        for short, full, saturated in ((count, count64, 0xFFFF), (here, here64, 0xFFFF), (cd_size, cd_size64, 0xFFFFFFFF),
                                       (cd_offset, cd_offset64, 0xFFFFFFFF), (disk, disk64, 0xFFFF),
                                       (cd_disk, cd_disk64, 0xFFFF)):
            if short not in (full, saturated):
                raise _unreadable(name, "its two zip directory records disagree")
        disk, cd_disk, here, count, cd_size, cd_offset = disk64, cd_disk64, here64, count64, cd_size64, cd_offset64
    if disk != 0 or cd_disk != 0 or here != count:
        raise _unreadable(name, "a multi-part zip archive")
    if count > MAX_RECORDS or cd_size > MAX_DIRECTORY_BYTES:  # zipfile reads the whole directory into objects
        raise _unreadable(name, f"{count:,} records in {describe_size(cd_size)} of zip directory, more than a "
                                f"checkpoint has ({MAX_RECORDS} in {describe_size(MAX_DIRECTORY_BYTES)})")
    if cd_offset + cd_size != end:  # nothing between the directory and its end record, nothing prepended
        raise _unreadable(name, "its zip directory is not where its end record says")
    return int(count)


def _unpickle(name: str, f: BinaryIO) -> object:
    f.seek(0)
    try:
        with warnings.catch_warnings():  # e.g. "Detected pickle protocol 75": the refusal says what is wrong
            warnings.simplefilter("ignore")
            return torch.load(f, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as e:
        # torch's message is a paragraph of advice to load it unsafely; its reason is one line of it
        detail = re.search(r"WeightsUnpickler error: ([^\n]*)", str(e))
        reason = printable(detail.group(1).split(" was not ")[0].split(". ")[0][:100]) if detail else ""
        reason = reason.strip() or "a pickle the weights-only reader cannot read"
        raise CheckpointError(f"{name}: refused, it holds something other than tensors and plain values ({reason}); "
                              "nothing was loaded") from None
    except MemoryError:
        raise CheckpointError(f"{name}: too large for the memory this machine has free; nothing was loaded") from None
    except Exception as e:  # noqa: BLE001 - torch's reader raises many kinds for a corrupt archive
        raise _unreadable(name, f"truncated or corrupt: {first_line(e)}") from None


