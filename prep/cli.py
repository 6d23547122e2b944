"""Command line: parse options, call the library, print one line per item. Nothing else lives here."""

from __future__ import annotations

import functools
import json
import sys
from pathlib import Path
from typing import Any, Callable

import click

from . import __version__
from .errors import PrepError


def _fail_cleanly(fn: Callable) -> Callable:
    """Bad input ends with ``prep: <file>: <problem>`` and exit code 1, never a traceback."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except PrepError as exc:
            raise click.ClickException(exc.line()) from None
        except KeyboardInterrupt:
            click.echo("prep: interrupted; run the same command again to resume", err=True)
            sys.exit(130)

    return wrapper


class _Main(click.Group):
    def main(self, *args: Any, **kwargs: Any) -> Any:
        click.ClickException.show = _show  # type: ignore[method-assign]
        return super().main(*args, **kwargs)


def _show(self: click.ClickException, file: Any = None) -> None:
    click.echo(f"prep: {self.format_message()}", err=True)


@click.group(cls=_Main, context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(__version__, prog_name="prep")
def main() -> None:
    """Prepare face datasets for talking-head and face-restoration trainers."""


def detector_options(fn: Callable) -> Callable:
    from .detect import DETECTOR_CHOICES

    fn = click.option("--weights-dir", type=click.Path(file_okay=False), envvar="PREP_WEIGHTS_DIR", help="Folder holding model files (offline use); also $PREP_WEIGHTS_DIR.")(fn)
    fn = click.option("--detector", type=click.Choice(DETECTOR_CHOICES), default=None, help="Face detector (default from the preset: auto = YuNet if its model is available, else dlib HOG).")(fn)
    return fn


def report_option(fn: Callable) -> Callable:
    return click.option("--report", "report_path", type=click.Path(dir_okay=False), default=None, help="Write a JSON report of the whole run (every item, kept and failed) to this file.")(fn)


def _write_report(path: str | None, command: str, records: list[dict[str, Any]], extra: dict[str, Any]) -> None:
    if not path:
        return
    from .batch import summarize
    from .fsutil import write_json

    slim = [{k: v for k, v in r.items() if k not in ("config",)} for r in records]
    write_json(path, {"command": command, "counts": summarize(records), **extra, "items": slim})


@main.command()
@click.argument("sources", nargs=-1, required=True, type=click.Path())
@click.option("-o", "--out", "out_dir", type=click.Path(file_okay=False), default="prep_crop", show_default=True, help="Output folder (the preset's layout decides where inside).")
@click.option("--preset", default="default", show_default=True, help="Preset name in presets/ (default, geneface, hallo) or a .toml file.")
@click.option("--size", type=int, default=None, help="Output side in pixels (preset: 512).")
@click.option("--fps", type=float, default=None, help="Output frame rate (preset: 25).")
@click.option("--mode", type=click.Choice(["fixed", "track"]), default=None, help="fixed: one window for the clip; track: a smoothed window that follows the face.")
@click.option("--pad", type=click.Choice(["black", "edge", "mirror"]), default=None, help="How to fill where the window leaves the frame.")
@detector_options
@click.option("--workers", type=int, default=1, show_default=True, help="Clips processed at once (each ffmpeg already uses several threads).")
@report_option
@_fail_cleanly
def crop(sources: tuple[str, ...], out_dir: str, preset: str, size: int | None, fps: float | None, mode: str | None, pad: str | None, detector: str | None, weights_dir: str | None, workers: int, report_path: str | None) -> None:
    """Cut a steady, face-centred square clip from each video (files or folders of videos).

    Writes OUT/<name>.mp4 (H.264, square pixels, constant frame rate, audio in sync) and
    OUT/<name>.json, a report of what was found and done. Clips already done are skipped.
    """
    from .batch import expand_sources, item_ids, map_items
    from .config import CropConfig
    from .crop import crop_video
    from .fsutil import check_writable_dir
    from .probe import VIDEO_EXTENSIONS

    cfg = CropConfig.resolve(preset, size=size, fps=fps, mode=mode, pad=pad, detector=detector, weights_dir=weights_dir)
    paths = expand_sources(sources, VIDEO_EXTENSIONS)
    if not paths:
        raise PrepError(None, f"no video files in {', '.join(sources)}")
    check_writable_dir(out_dir)
    items = [(str(p), out_dir, cfg, item_id) for p, item_id in zip(paths, item_ids(paths))]
    records = []
    for rec in map_items(crop_video, items, workers, "crop"):
        records.append(rec)
        _echo_crop(rec)
    _write_report(report_path, "crop", records, {"config": cfg.to_dict(), "out": out_dir})
    _finish(records)


def _echo_crop(rec: dict[str, Any]) -> None:
    if rec["status"] == "error":
        click.echo(f"prep: {rec['message']}", err=True)
        return
    if rec["status"] == "skipped":
        click.echo(f"skip {rec['source']}: already done -> {rec['output']}")
        return
    o, w, d = rec["output_info"], rec["window"], rec["detector"]
    click.echo(
        f"ok   {rec['source']} -> {rec['output']} ({o['size']}x{o['size']}, {o['fps']:g} fps, {o['frames']} frames, "
        f"{'audio' if o['audio'] else 'no audio'}; {rec['mode']} window {w['side']:.0f} px, detector {d['name']}; report {rec['report']})"
    )
    for warning in rec["warnings"]:
        click.echo(f"     warning: {warning}")


def _finish(records: list[dict[str, Any]]) -> None:
    from .batch import summarize

    counts = summarize(records)
    if len(records) > 1:
        click.echo(", ".join(f"{n} {k}" for k, n in sorted(counts.items())))
    if counts.get("error"):
        sys.exit(1)


if __name__ == "__main__":  # pragma: no cover
    main()
