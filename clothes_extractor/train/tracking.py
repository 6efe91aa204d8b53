"""Experiment tracking beside ``metrics.jsonl``: TensorBoard and/or Weights & Biases (``--report-to``).

What a tracker gets, on rank 0 only:

- at the start, the run's configuration (``config.json``'s content);
- every epoch, at the epoch's number as its step, the scalars of its ``metrics.jsonl`` line
  (``step``, ``lr``, ``seconds``, ``train/<loss>``, ``val/<metric>``: :func:`epoch_scalars`) and
  its sample picture (``samples``, the pixels of ``samples/epoch_NNN.png``).

``report_to`` (``LoopConfig.report_to``, saved in ``config.json``, so ``--resume`` reports where
the run did unless ``--report-to`` says otherwise):

- ``auto`` (the default): TensorBoard when the package is installed, else nothing (what the
  toolkit did before this setting existed);
- ``tensorboard``: event files in ``<run>/tensorboard/`` (``pip install ".[tensorboard]"``);
- ``wandb``: a W&B run whose files are in ``<run>/wandb/`` (``pip install ".[wandb]"``); its id
  (and project) are kept in ``<run>/wandb.json``, so a resumed run continues the same W&B run.
  Without a W&B login (no ``WANDB_API_KEY``, no ``wandb login``) and no ``WANDB_MODE``, it logs
  offline and says so in one line (``wandb sync`` uploads it later); nothing needs the network.
  The project is ``WANDB_PROJECT`` or ``clothes-extractor``, the run's name its folder's name;
  W&B's own environment variables (``WANDB_ENTITY``, ``WANDB_MODE``, ``WANDB_SILENT``...) apply;
- ``tensorboard,wandb``: both; ``none``: neither.

A named tracker whose package is missing stops the command before any data is read, in one line
that names the extra to install (:func:`resolve_reporters`).
"""

from __future__ import annotations

import configparser
import importlib.util
import json
import netrc
import os
from pathlib import Path
from typing import Any, Callable
from urllib.parse import urlsplit

from clothes_extractor.errors import ConfigError

REPORTERS = ("tensorboard", "wandb")  # in the order they are opened and written in config.json
_MODULE = {"tensorboard": "tensorboard", "wandb": "wandb"}  # the package each needs
WANDB_RUN_FILE = "wandb.json"  # in the run folder: {"id": ..., "project": ...} of its W&B run
DEFAULT_PROJECT = "clothes-extractor"


def parse_report_to(value: str | None) -> str:
    """``report_to`` in its one spelling: ``auto``, ``none``, or tracker names joined by commas
    in :data:`REPORTERS`' order (``wandb,tensorboard`` -> ``tensorboard,wandb``; ``all``: both)."""
    if value is None:
        return "auto"
    words = [w.strip().lower() for w in str(value).split(",") if w.strip()]
    if words in (["auto"], ["none"]):
        return words[0]
    if words == ["all"]:
        return ",".join(REPORTERS)
    unknown = [w for w in words if w not in REPORTERS]
    if not words or unknown:
        raise ConfigError(
            f"--report-to {value!r}: give tensorboard, wandb, tensorboard,wandb, none or auto"
            + (f" ({unknown[0]!r} is not one of them)" if unknown else "")
        )
    return ",".join(r for r in REPORTERS if r in words)


def _installed(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):  # a module set to None in sys.modules, a broken package
        return False


def missing_message(name: str) -> str:
    return (
        f"--report-to {name} needs the {_MODULE[name]} package, which is not installed: "
        f'pip install -e ".[{name}]" (or pip install {_MODULE[name]}), or leave {name} out of --report-to'
    )


def resolve_reporters(report_to: str) -> tuple[str, ...]:
    """The trackers ``report_to`` opens; ConfigError (one line naming the extra) where a named
    one's package is missing. Cheap (no import): every rank checks before the data loads."""
    report_to = parse_report_to(report_to)
    if report_to == "none":
        return ()
    if report_to == "auto":
        return ("tensorboard",) if _installed(_MODULE["tensorboard"]) else ()
    names = tuple(report_to.split(","))
    for name in names:
        if not _installed(_MODULE[name]):
            raise ConfigError(missing_message(name))
    return names


def epoch_scalars(record: dict[str, Any]) -> dict[str, float]:
    """The numbers of a ``metrics.jsonl`` record, flat: ``step``, ``lr``, ``seconds``,
    ``train/<k>``, ``val/<k>`` (a value that is not a number, such as an undefined IoU, is left
    out). ``epoch`` is the step they are logged at."""
    out: dict[str, float] = {}

    def number(v: Any) -> bool:
        return isinstance(v, (int, float)) and not isinstance(v, bool)

    for key in ("step", "lr", "seconds"):
        if number(record.get(key)):
            out[key] = record[key]
    for part in ("train", "val"):
        for k, v in record.get(part, {}).items():
            if number(v):
                out[f"{part}/{k}"] = v
    return out


# --- W&B: login, offline default, the run id ------------------------------------------------------

def wandb_logged_in() -> bool:
    """Whether W&B would find credentials: ``WANDB_API_KEY`` (or an identity token file), or a
    ``.netrc`` entry for the W&B host (what ``wandb login`` writes)."""
    if os.environ.get("WANDB_API_KEY") or os.environ.get("WANDB_IDENTITY_TOKEN_FILE"):
        return True
    host = urlsplit(os.environ.get("WANDB_BASE_URL") or "https://api.wandb.ai").netloc
    candidates = [os.environ["NETRC"]] if os.environ.get("NETRC") else [str(Path.home() / ".netrc"), str(Path.home() / "_netrc")]
    for path in candidates:
        try:
            entry = netrc.netrc(path).authenticators(host)
        except (OSError, netrc.NetrcParseError):
            continue
        if entry and entry[2]:
            return True
    return False


def _wandb_mode_chosen() -> bool:
    """Whether the user chose W&B's mode: ``WANDB_MODE`` (or the older ``WANDB_OFFLINE``,
    ``WANDB_DISABLED``), or ``wandb offline`` / ``wandb online`` (its settings file)."""
    if any(os.environ.get(k) for k in ("WANDB_MODE", "WANDB_OFFLINE", "WANDB_DISABLED")):
        return True
    config_dir = os.environ.get("WANDB_CONFIG_DIR") or str(Path.home() / ".config" / "wandb")
    for path in (Path(config_dir) / "settings", Path("wandb") / "settings"):
        parser = configparser.ConfigParser()
        try:
            parser.read(path)
        except (OSError, configparser.Error):
            continue
        if parser.has_option("default", "mode"):
            return True
    return False


def wandb_mode() -> str | None:
    """``"offline"`` where W&B would otherwise ask for a login (no credentials, no mode chosen);
    None: W&B's own choice."""
    return None if _wandb_mode_chosen() or wandb_logged_in() else "offline"


def read_wandb_run(run: Path) -> dict[str, Any]:
    """``<run>/wandb.json`` (the W&B run this run folder logs to), or {} before its first W&B run."""
    path = Path(run) / WANDB_RUN_FILE
    try:
        saved = json.loads(path.read_text())
    except FileNotFoundError:
        return {}
    except (OSError, json.JSONDecodeError) as exc:
        raise ConfigError(f"{path} is not readable ({exc}); delete it to start a new W&B run") from None
    return saved if isinstance(saved, dict) else {}


# --- the trackers -----------------------------------------------------------------------------------

class _TensorBoard:
    def __init__(self, run: Path, config: dict[str, Any], epoch: int, required: bool) -> None:
        try:
            from torch.utils.tensorboard import SummaryWriter
        except Exception as exc:  # noqa: BLE001 - a broken install: one line, or nothing on auto
            if required:
                raise ConfigError(f"--report-to tensorboard: TensorBoard cannot be loaded ({exc}); reinstall it: pip install -e \".[tensorboard]\"") from None
            self.writer = None
            return
        self.writer = SummaryWriter(str(run / "tensorboard"))
        self.writer.add_text("config", "```json\n" + json.dumps(config, indent=2, sort_keys=True) + "\n```", epoch)

    def log_epoch(self, epoch: int, scalars: dict[str, float], picture) -> None:
        if self.writer is None:
            return
        for k, v in scalars.items():
            self.writer.add_scalar(k, v, epoch)
        if picture is not None:
            self.writer.add_image("samples", picture, epoch, dataformats="HWC")
        self.writer.flush()

    def close(self, ok: bool) -> None:
        if self.writer is not None:
            self.writer.close()


class _Wandb:
    def __init__(self, run: Path, config: dict[str, Any], say: Callable[..., None]) -> None:
        import wandb

        saved = read_wandb_run(run)
        project = saved.get("project") or os.environ.get("WANDB_PROJECT") or DEFAULT_PROJECT
        entity = saved.get("entity") or os.environ.get("WANDB_ENTITY") or None
        mode = wandb_mode()
        if mode == "offline":
            say(f"W&B: no login (WANDB_API_KEY, `wandb login`): logging offline to {run / 'wandb'}; `wandb sync` uploads it later")
        settings: dict[str, Any] = {}
        if not os.environ.get("WANDB_CONSOLE"):
            settings["console"] = "off"  # the progress bars are not a log; WANDB_CONSOLE=wrap keeps them
        try:
            self.run = wandb.init(
                project=project, entity=entity, id=saved.get("id"), resume="allow", name=run.resolve().name,
                dir=str(run), mode=mode, settings=wandb.Settings(**settings),
            )
        except Exception as exc:  # noqa: BLE001 - no network, a bad key...: one line, not a traceback
            raise ConfigError(f"W&B could not start a run ({exc}); WANDB_MODE=offline logs without the network") from None
        self.run.config.update(config, allow_val_change=True)
        record = {"id": self.run.id, "project": project}
        if entity:
            record["entity"] = entity
        from clothes_extractor.fileio import atomic_write_text

        atomic_write_text(run / WANDB_RUN_FILE, json.dumps(record) + "\n")

    def log_epoch(self, epoch: int, scalars: dict[str, float], picture) -> None:
        import wandb

        data: dict[str, Any] = dict(scalars)
        if picture is not None:
            data["samples"] = wandb.Image(picture, caption=f"epoch {epoch}")
        self.run.log(data, step=epoch)

    def close(self, ok: bool) -> None:
        self.run.finish(exit_code=0 if ok else 1)


class Trackers:
    """The open trackers of a run (none on ranks other than 0): :meth:`log_epoch` after each
    epoch, :meth:`close` at the end (``ok`` False: the run stopped on an error or Ctrl-C)."""

    def __init__(self, trackers: list | None = None) -> None:
        self.trackers = trackers or []

    @classmethod
    def open(cls, run: Path, report_to: str, config: dict[str, Any], epoch: int, say: Callable[..., None]) -> Trackers:
        """Open what ``report_to`` names for the run folder ``run``, which exists; ``epoch``:
        epochs done (the step the configuration is logged at)."""
        names = resolve_reporters(report_to)
        opened = cls()
        try:
            for name in names:
                if name == "tensorboard":
                    opened.trackers.append(_TensorBoard(run, config, epoch, required=parse_report_to(report_to) != "auto"))
                else:
                    opened.trackers.append(_Wandb(run, config, say))
        except BaseException:
            opened.close(ok=False)
            raise
        return opened

    def log_epoch(self, record: dict[str, Any], picture) -> None:
        """``record``: the epoch's ``metrics.jsonl`` line; ``picture``: its HxWx3 uint8 samples."""
        scalars = epoch_scalars(record)
        for t in self.trackers:
            t.log_epoch(record["epoch"], scalars, picture)

    def close(self, ok: bool = True) -> None:
        trackers, self.trackers = self.trackers, []
        for t in trackers:
            t.close(ok)
