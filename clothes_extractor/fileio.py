"""Atomic writes and image reading with errors that name the file."""

from __future__ import annotations

import contextlib
import errno
import functools
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

from PIL import Image

from clothes_extractor.errors import DataError, OutputError


@functools.cache
def _file_mode() -> int:
    """The mode a plain ``open(path, "w")`` gives a new file: 0o666 less the umask."""
    umask = os.umask(0o022)  # the only way to read it: set, then restore at once
    os.umask(umask)
    return 0o666 & ~umask


def _temp_name_parts(path: Path) -> tuple[str, str]:
    """(prefix, suffix) of the temporary files of ``path``: ``.<stem>.<random>.tmp<suffix>``."""
    return f".{path.stem}.", f".tmp{path.suffix}"


_OS_REASONS: dict[int, str] = {
    errno.EACCES: "permission denied",
    errno.EPERM: "permission denied",
    errno.EROFS: "read-only file system",
    errno.ENOSPC: "no space left on the device",
    errno.EDQUOT: "disk quota exceeded",
    errno.ENOTDIR: "a file stands where a folder should be",
    errno.EEXIST: "a file stands where a folder should be",
    errno.EISDIR: "it is a folder",
}


def output_error(path: str | os.PathLike, exc: OSError, what: str = "output") -> OutputError:
    """An OSError met while writing ``path`` -> one line naming the path, the reason in words and
    what to do."""
    reason = _OS_REASONS.get(exc.errno or 0, exc.strerror or str(exc))
    return OutputError(f"cannot write {what} {path}: {reason}; choose another place or free it")


def check_folder_creatable(path: str | os.PathLike, what: str = "output folder") -> Path:
    """Make sure the folder ``path`` exists or can be made, without writing anything: the nearest
    existing one of it and its parents is a folder this process may write. For places that several
    processes check at once (the ranks of a training run), where :func:`check_writable`'s probe
    file would show in another's listing. OutputError (naming ``path``) otherwise."""
    path = Path(path)
    existing = next(p for p in (path, *path.parents) if p.exists() or p == p.parent)
    if not existing.is_dir():
        raise output_error(path, NotADirectoryError(errno.ENOTDIR, "not a folder", str(existing)), what)
    if not os.access(existing, os.W_OK | os.X_OK):
        code = errno.EROFS if _read_only(existing) else errno.EACCES
        raise output_error(path, OSError(code, os.strerror(code), str(existing)), what)
    return path


def _read_only(path: Path) -> bool:
    return bool(os.statvfs(path).f_flag & os.ST_RDONLY) if hasattr(os, "statvfs") else False


def check_writable(path: str | os.PathLike, what: str = "output", *, folder: bool = False) -> Path:
    """Make sure ``path`` can be written, before any slow work: create its folder (``path``
    itself when ``folder``, else its parent), write and remove a probe file there, then remove
    the folders it created (no trace). OutputError (naming the path) on any OS error:
    permission, read-only or full disk, a file where a folder should be. Returns ``path``."""
    path = Path(path)
    target = path if folder else path.parent
    created = [p for p in (target, *target.parents) if not p.exists() and not p.is_symlink()]
    try:
        if folder and path.exists() and not path.is_dir():
            raise NotADirectoryError(errno.ENOTDIR, "not a folder", str(path))
        target.mkdir(parents=True, exist_ok=True)
        fd, probe = tempfile.mkstemp(prefix=".probe.", suffix=".tmp", dir=target)
        try:
            os.write(fd, b"probe")
            os.fsync(fd)
        finally:
            os.close(fd)
            os.unlink(probe)
    except OSError as exc:
        raise output_error(path, exc, what) from None
    finally:
        for made in created:  # deepest first
            with contextlib.suppress(OSError):
                made.rmdir()
    return path


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; move it into place only if the block succeeds.

    An exception (Ctrl-C included) leaves ``path`` untouched (either absent or its previous
    version) and no temporary file behind; a kill leaves ``path`` untouched too, and a hidden
    temporary file that :func:`remove_stale_temp_files` clears. The file gets the usual
    permissions (0o666 less the umask), not the owner-only ones of a temporary file.

    An OSError of the temporary file's creation or of the final move becomes an OutputError
    naming ``path``; so does one raised by the block when it comes from writing the temporary
    file (its ``filename`` is the temporary path, or it is ENOSPC/EROFS/EDQUOT).
    """
    path = Path(path)
    # Keep the suffix so libraries that pick a format from the extension (PIL) still work.
    prefix, suffix = _temp_name_parts(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=prefix, suffix=suffix, dir=path.parent)
        os.close(fd)
    except OSError as exc:
        raise output_error(path, exc) from None
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        try:
            os.chmod(tmp_path, _file_mode())
            os.replace(tmp_path, path)
        except OSError as exc:
            raise output_error(path, exc) from None
    except OSError as exc:
        tmp_path.unlink(missing_ok=True)
        if exc.errno in (errno.ENOSPC, errno.EROFS, errno.EDQUOT) or str(exc.filename or "") == str(tmp_path):
            raise output_error(path, exc) from None
        raise
    except BaseException:
        tmp_path.unlink(missing_ok=True)
        raise


def atomic_write_text(path: str | os.PathLike, text: str) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(text)


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> None:
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)


def remove_stale_temp_files(path: str | os.PathLike) -> list[Path]:
    """Delete the temporary files that killed writes of ``path`` left beside it; the list of them.

    Call it only where no other process writes ``path`` at the same time (a training run's own
    checkpoint): a live write's temporary file has the same name pattern.
    """
    path = Path(path)
    prefix, suffix = _temp_name_parts(path)
    found = [p for p in path.parent.glob(f"{glob_escape(prefix)}*{glob_escape(suffix)}") if p.is_file()]
    for stale in found:
        stale.unlink(missing_ok=True)
    return found


def glob_escape(text: str) -> str:
    """``text`` with the glob wildcards ``*?[`` matched literally."""
    return "".join(f"[{c}]" if c in "*?[" else c for c in text)


def save_image(image: Image.Image, path: str | os.PathLike, **params) -> None:
    """Save ``image`` atomically; the format follows the extension of ``path``."""
    path = Path(path)
    fmt = Image.registered_extensions().get(path.suffix.lower())
    with atomic_path(path) as tmp:
        image.save(tmp, format=fmt, **params)


def open_image(path: str | os.PathLike, what: str = "image") -> Image.Image:
    """Open and fully decode an image, turning every failure into a DataError naming the file."""
    path = Path(path)
    if path.is_dir():
        raise DataError(f"{what} {path} is a folder, not an image file")
    if not path.is_file():
        raise DataError(f"{what} not found: {path}")
    try:
        image = Image.open(path)
        image.load()  # decode now, so a truncated file fails here and not later
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as exc:
        raise DataError(f"cannot read {what} {path}: {exc}") from None
    return image

