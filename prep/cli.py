"""Command line: parse options, call the library, print one line per item. Nothing else lives here."""

from __future__ import annotations

import dataclasses
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
            if kwargs.get("out_dir"):  # temporaries a run killed outright left (SIGKILL, out of memory)
                from .fsutil import sweep_partials

                sweep_partials(kwargs["out_dir"])
            return fn(*args, **kwargs)
        except PrepError as exc:
            raise click.ClickException(exc.line()) from None
        except OSError as exc:  # the disk or the file system (a folder that is a file, no permission, a full disk): one line
            if not exc.strerror:
                raise
            raise click.ClickException(f"{exc.filename}: {exc.strerror}" if exc.filename else exc.strerror) from None
        except KeyboardInterrupt:
            from .fsutil import sweep_partials
            from .runlog import RunLog

            if kwargs.get("out_dir"):  # the workers have stopped: a temporary one of them could not remove goes now
                sweep_partials(kwargs["out_dir"])
            RunLog.interrupted()  # the run report says so (what was done is listed)
            click.echo("prep: interrupted; run the same command again to resume", err=True)
            sys.exit(130)

    return wrapper


class _Main(click.Group):
    def main(self, *args: Any, **kwargs: Any) -> Any:
        click.ClickException.show = _show  # type: ignore[method-assign]
        stop_on_sigterm()
        return super().main(*args, **kwargs)


def stop_on_sigterm() -> None:
    """SIGTERM (a scheduler's or ``kill``'s stop) ends the run as Ctrl-C does: the pool's
    workers get Ctrl-C, temporary files are removed, the run report says it was interrupted."""
    import signal

    def _stop(signum: int, frame: Any) -> None:
        from .runner import interrupt_workers

        interrupt_workers()
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, _stop)


def _show(self: click.ClickException, file: Any = None) -> None:
    click.echo(f"prep: {self.format_message()}", err=True)


@click.group(cls=_Main, context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(__version__, prog_name="prep")
def main() -> None:
    """Prepare face datasets for talking-head and face-restoration trainers."""


def _parse_tiers(ctx: Any, param: Any, value: str | None) -> tuple[int, ...] | None:
    if not value:
        return None
    try:
        tiers = tuple(sorted({int(v) for v in value.split(",") if v.strip()}))
    except ValueError:
        raise click.BadParameter("a comma-separated list of sizes, e.g. 128,256,512") from None
    small = [t for t in tiers if not 16 <= t <= 8192]
    if small:
        raise click.BadParameter(f"sizes are 16 to 8192 pixels, got {', '.join(map(str, small))}")
    return tiers or None


def tiers_option(fn: Callable) -> Callable:
    return click.option("--tiers", callback=_parse_tiers, default=None, help="Write the same set at several sizes, e.g. 128,256,512, in sibling folders OUT/128, OUT/256, ...")(fn)


def detector_options(fn: Callable) -> Callable:
    from .detect import DETECTOR_CHOICES

    fn = click.option("--weights-dir", type=click.Path(file_okay=False), envvar="PREP_WEIGHTS_DIR", help="Folder holding model files (offline use); also $PREP_WEIGHTS_DIR.")(fn)
    fn = click.option("--detector", type=click.Choice(DETECTOR_CHOICES), default=None, help="Face detector (default from the preset: auto = YuNet if its model is available, else dlib HOG).")(fn)
    return fn


def report_option(fn: Callable) -> Callable:
    return click.option("--report", "report_path", type=click.Path(dir_okay=False), default=None, help="Write a JSON report of the whole run (every item, kept and failed) to this file.")(fn)


def runner_options(fn: Callable) -> Callable:
    """--runner, --ray-address and --from-list: where the unit of work runs, and a manifest of inputs."""
    fn = click.option("--from-list", "from_list", type=click.Path(dir_okay=False), default=None, help="Inputs listed in FILE (besides any given as arguments): one path per line, or a CSV or Parquet file with a 'path' column (optional 'id' column: the output name). Streamed: no folder walk.")(fn)
    fn = click.option("--ray-address", "ray_address", envvar="PREP_RAY_ADDRESS", default=None, help="With --runner ray: the cluster to run on (what 'ray start --head' prints); also $PREP_RAY_ADDRESS or $RAY_ADDRESS. Without it a local Ray is started for the run.")(fn)
    fn = click.option("--runner", type=click.Choice(["local", "ray"]), default="local", show_default=True, help="local: this machine (--workers processes); ray: Ray tasks on a cluster (pip install 'prep[ray]').")(fn)
    return fn


def person_option(fn: Callable) -> Callable:
    return click.option("--person", "person", multiple=True, type=click.Path(), help="Keep only this person's faces: a photo of them, a folder of photos, or the option repeated (needs pip install 'prep[identity]').")(fn)


def group_by_option(fn: Callable) -> Callable:
    return click.option("--group-by", "group_by", type=click.Choice(["person"]), default=None, help="person: cluster faces by identity across all inputs into OUT/person_00/, OUT/person_01/, ... (most faces first), each with sheet.png.")(fn)


def _reference(person: tuple[str, ...], group_by: str | None, detector: str | None, weights_dir: str | None):
    """The resolved reference (embedded once, here on the driver), or ``None`` without --person."""
    from . import identity

    if person or group_by:
        identity.require()
    if not person:
        return None
    from .blurscan import detector_for

    return identity.load_reference(person, detector_for(_detect_settings(detector, weights_dir, quiet=True)))



def _run_options(runner: str, workers: int, ray_address: str | None) -> Any:
    from .runner import RunOptions

    if workers < 1:
        raise PrepError(None, f"--workers must be at least 1, got {workers}")
    if runner == "ray":  # --workers: the CPUs of a Ray started for the run (default: all of them)
        return RunOptions("ray", workers if workers > 1 else None, ray_address)
    return RunOptions("local", workers)


def _inputs(sources: tuple[str, ...], from_list: str | None, extensions: set[str], none_found: PrepError) -> tuple[Any, int | None]:
    """``(path, item id)`` pairs of the arguments and the manifest, failing when there are none."""
    from itertools import chain

    from .batch import iter_inputs

    if not sources and not from_list:
        raise click.UsageError("give files or folders, or --from-list FILE")
    it, total = iter_inputs(sources, from_list, extensions)
    first = next(it, None)
    if first is None:
        raise none_found
    return chain([first], it), total


def _copy_unless_there(src: str, dest: Path) -> None:
    """The source video copied to ``dest`` (temporary name, then rename), unless it is there."""
    from .fsutil import copy_atomic

    if not dest.is_file() or dest.stat().st_size != Path(src).stat().st_size:
        copy_atomic(src, dest)


def _no_earlier_persons(inputs: Any, out_dir: str, earlier: Any, what: str) -> list[tuple[str, str]]:
    """``--group-by person``: the run's ``(path, item id)`` pairs, held (the run holds every
    record for the grouping anyway), after refusing with one line an OUT whose person folders
    hold inputs of an earlier run that this one lacks (``earlier(out_dir, item ids)`` names
    them): numbered afresh beside them, one ``person_NN`` could hold two people."""
    held = list(inputs)
    stale = earlier(out_dir, [item_id for _, item_id in held])
    if stale:
        listed = ", ".join(stale[:3]) + (", ..." if len(stale) > 3 else "")
        raise PrepError(out_dir, f"its person folders hold {what.format(len(stale))} an earlier run grouped that this run does not have ({listed}): give them again, or use another output folder")
    return held


@main.command()
@click.argument("sources", nargs=-1, type=click.Path())
@click.option("-o", "--out", "out_dir", type=click.Path(file_okay=False), default="prep_crop", show_default=True, help="Output folder (the preset's layout decides where inside).")
@click.option("--preset", default="default", show_default=True, help="Preset name in presets/ (default, geneface, hallo) or a .toml file.")
@click.option("--size", type=int, default=None, help="Output side in pixels (preset: 512).")
@click.option("--fps", type=float, default=None, help="Output frame rate (preset: 25).")
@click.option("--mode", type=click.Choice(["fixed", "track"]), default=None, help="fixed: one window for the clip; track: a smoothed window that follows the face.")
@click.option("--pad", type=click.Choice(["black", "edge", "mirror"]), default=None, help="How to fill where the window leaves the frame.")
@click.option("--split/--no-split", default=None, help="Real footage: find shots and face tracks, write one clip per segment (<name>__sNN_tNN.mp4) and OUT/report.html. Default from the preset.")
@click.option("--speech", type=click.Choice(["require", "measure", "off"]), default=None, help="Is the face the one speaking, in sync? measure: report it; require: also reject listeners, voice-overs, silence and bad offsets, and correct a measured offset (default from the preset).")
@tiers_option
@person_option
@group_by_option
@detector_options
@click.option("--workers", type=int, default=1, show_default=True, help="Clips processed at once (each ffmpeg already uses several threads).")
@runner_options
@report_option
@_fail_cleanly
def crop(sources: tuple[str, ...], out_dir: str, preset: str, size: int | None, fps: float | None, mode: str | None, pad: str | None, split: bool | None, speech: str | None, tiers: tuple[int, ...] | None, person: tuple[str, ...], group_by: str | None, detector: str | None, weights_dir: str | None, workers: int, runner: str, ray_address: str | None, from_list: str | None, report_path: str | None) -> None:
    """Cut a steady, face-centred square clip from each video (files or folders of videos).

    Writes OUT/<name>.mp4 (H.264, square pixels, constant frame rate, audio in sync) and
    OUT/<name>.json, a report of what was found and done. Clips already done are skipped.
    With --split, each shot's face tracks become segments, one clip each, and OUT/report.html
    shows what was kept and rejected and why.
    """
    from .config import CropConfig
    from .crop import crop_video, done
    from .fsutil import check_writable_dir
    from .probe import VIDEO_EXTENSIONS
    from .runlog import RunLog
    from .runner import run_items

    if person and group_by:
        raise PrepError(None, "--person and --group-by person do not go together: --person keeps one person, --group-by sorts everyone")
    ref = _reference(person, group_by, detector, weights_dir)
    cfg = CropConfig.resolve(preset, size=size, fps=fps, mode=mode, pad=pad, split=split, speech=speech, detector=detector, weights_dir=weights_dir, tiers=tiers, person=ref, group_by=group_by)
    name, folder = _resolve_detector(cfg.detector, cfg.weights_dir)
    cfg = dataclasses.replace(cfg, detector=name, weights_dir=folder, speech_weights=weights_dir)
    cfg = _check_speech_model(cfg)
    if cfg.group_by and not cfg.split:
        raise PrepError(None, "--group-by person sorts segments: use it with --split")
    inputs, total = _inputs(sources, from_list, VIDEO_EXTENSIONS, PrepError(None, f"no video files in {', '.join(sources or (from_list or '',))}"))
    check_writable_dir(out_dir)
    if cfg.group_by:
        from .crop.group import earlier_sources

        inputs = _no_earlier_persons(inputs, out_dir, earlier_sources, "segments of {} source(s)")
    items = ((p, out_dir, cfg, item_id) for p, item_id in inputs)
    log = RunLog(report_path, "crop")
    # --split: the sources' records are kept for the review page; logged as they come (an
    # interrupted run's report lists what was done), except with --group-by person, whose
    # records are logged once the grouping has moved their clips to where they end up
    kept: list[dict[str, Any]] | None = [] if cfg.split else None
    for rec in run_items(crop_video, items, _run_options(runner, workers, ray_address), done, total, "crop"):
        _echo_crop(rec)
        if kept is not None:
            kept.append(rec)
        if kept is None or not cfg.group_by:
            log.add({k: v for k, v in rec.items() if k != "review"})
    if kept is not None:
        if cfg.group_by:
            from .crop import group_segments

            for g in group_segments(out_dir, kept):
                click.echo(f"{Path(out_dir) / g['person']}: {g['segments']} segment(s) from {g['sources']} source(s); sheet {Path(out_dir) / g['person'] / 'sheet.png'}")
        from .video.review import write_page

        page = write_page(out_dir, kept)
        if page:
            click.echo(f"review page: {page}")
        if cfg.group_by:
            for rec in kept:
                log.add({k: v for k, v in rec.items() if k != "review"})
    log.finish({"config": cfg.to_dict(), "out": out_dir})
    _finish(log)


def _check_speech_model(cfg: Any) -> Any:
    """On the driver, once: the speech model every worker loads (its folder goes into the
    config); without it, --speech require stops here with one line saying what to put where,
    and measure notes it once (the reports say it was not measured)."""
    from .video.speaking import decide_model

    cfg = decide_model(cfg)
    if cfg.speech_missing and cfg.speech == "require":
        raise PrepError(None, f"{cfg.speech_missing} (or use --speech measure/off)")
    if cfg.speech_missing:
        click.echo(f"note: {cfg.speech_missing}")
    return cfg


def _echo_speech(rep: dict[str, Any] | None) -> None:
    if not rep:
        return
    if not rep.get("measured"):
        click.echo(f"     speech: not measured ({rep.get('note')})")
        return
    off = rep.get("offset_frames")
    click.echo(f"     speech: speaking {rep['speaking']:.0%}, voiced {rep['voiced']:.0%}, sync {rep['sync'] if rep['sync'] is not None else 'n/a'}, offset {off if off is not None else 'n/a'} frames (confidence {rep['confidence']:.2f})"
               + (f", audio corrected by {rep['corrected_ms']:g} ms" if rep.get("corrected_ms") else ""))


def _echo_crop(rec: dict[str, Any]) -> None:
    from .crop.outputs import STAGING

    if rec["status"] == "error":
        click.echo(f"prep: {rec['message']}", err=True)
        return
    if rec["status"] == "rejected":
        click.echo(f"rej  {rec['source']}: {rec['reason']}: {rec['why']}" + ("; done before" if rec.get("note") else ""))
        _echo_speech(rec.get("speech"))
        return
    if rec.get("split"):
        kept = [e for e in rec["segments"] if e["status"] == "kept"]
        tag = "skip" if rec["status"] == "skipped" else "ok  " if kept else "none"
        click.echo(f"{tag} {rec['source']}: {len(rec['shots'])} shot(s), {rec['tracks']} face track(s), {len(kept)} segment(s) kept, {len(rec['segments']) - len(kept)} rejected"
                   + (f" ({rec['reason']})" if rec.get("reason") else "") + ("; done before" if rec["status"] == "skipped" else ""))
        for e in kept:
            who = f"  (person: similarity {e['person']['similarity']:.3f}{', uncertain' if e['person']['uncertain'] else ''})" if e.get("person") else ""
            # --group-by person: the clip waits in the staging folder until the persons are known
            where = "its person's folder, at the end" if f"/{STAGING}/" in Path(e["output"]).as_posix() else e["output"]
            click.echo(f"     {e['source_start']:7.2f}-{e['source_end']:7.2f} s -> {where}{who}")
        return
    if rec["status"] == "skipped":
        click.echo(f"skip {rec['source']}: already done -> {rec['output']}")
        return
    o, w, d = rec["output_info"], rec["window"], rec["detector"]
    click.echo(
        f"ok   {rec['source']} -> {rec['output']} ({o['size']}x{o['size']}, {o['fps']:g} fps, {o['frames']} frames, "
        f"{'audio' if o['audio'] else 'no audio'}; {rec['mode']} window {w['side']:.0f} px, detector {d['name']}; report {rec['report']})"
    )
    if d.get("note"):
        click.echo(f"     note: detector {d['name']} chosen because {d['note']}")
    if rec.get("person"):
        m = rec["person"]["match"]
        click.echo(f"     person: similarity {m['similarity']:.3f} (threshold {rec['person']['reference']['threshold']:.3f})" + (f", uncertain: {m['reason']}" if m["uncertain"] else ""))
    _echo_speech(rec.get("speech"))
    for warning in rec["warnings"]:
        click.echo(f"     warning: {warning}")
    for tier in rec.get("tiers", [])[1:]:
        click.echo(f"     also {tier['output']}")


def _detect_settings(detector: str | None, weights_dir: str | None, quiet: bool = False):
    from .blurscan import DetectSettings

    return DetectSettings(*_resolve_detector(detector, weights_dir, quiet))


def _resolve_detector(detector: str | None, weights_dir: str | None, quiet: bool = False) -> tuple[str, str | None]:
    """The detector every worker of this run uses, and its model folder, decided here once
    (``auto``: YuNet when its model is available, else HOG; said once, on stdout, unless
    ``quiet``: stderr keeps one line per problem, and --json output stays JSON)."""
    from .detect import resolve_detector

    name, folder, note = resolve_detector(detector or "auto", weights_dir)
    if note and not quiet:
        click.echo(f"note: detector {name} chosen because {note}")
    return name, folder


@main.command()
@click.argument("sources", nargs=-1, type=click.Path())
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object per photo or video frame (path, score, blurry, frame).")
@click.option("--threshold", type=float, default=None, help="Photo threshold: scores below it are blurred (preset blur: 0.20). Higher is sharper.")
@click.option("--move-rejected", "move_dir", type=click.Path(file_okay=False), default=None, help="Move rejected photos into DIR/motion, DIR/defocus, DIR/low_resolution, DIR/no_face, with the reasons in DIR/rejected.jsonl.")
@click.option("--keep-low-res", is_flag=True, help="Keep faces that are small but not blurred (by default they are rejected as low resolution).")
@click.option("--sheet", "sheet_path", type=click.Path(dir_okay=False), default=None, help="Write a contact sheet (PNG) of the rejected and borderline items.")
@person_option
@detector_options
@click.option("--workers", type=int, default=1, show_default=True, help="Photos and videos scored at once.")
@runner_options
@report_option
@_fail_cleanly
def blur(sources: tuple[str, ...], as_json: bool, threshold: float | None, move_dir: str | None, keep_low_res: bool, sheet_path: str | None, person: tuple[str, ...], detector: str | None, weights_dir: str | None, workers: int, runner: str, ray_address: str | None, from_list: str | None, report_path: str | None) -> None:
    """Score photos, folders of photos and the frames of videos for motion blur and defocus.

    Photos are judged against an absolute threshold; video frames against their own clip
    (a soft but steady clip keeps its frames). Faces are scored at a normalised scale; a
    photo with no face is scored on the whole image and marked so.
    """
    from .blurdecide import BlurConfig
    from .blurscan import move_rejected, score_file
    from .images import IMAGE_EXTENSIONS
    from .probe import VIDEO_EXTENSIONS
    from .runlog import RunLog
    from .runner import run_items

    cfg = BlurConfig.resolve(photo_threshold=threshold, keep_low_res=keep_low_res or None)
    det = _detect_settings(detector, weights_dir, quiet=as_json)
    inputs, total = _inputs(sources, from_list, IMAGE_EXTENSIONS | VIDEO_EXTENSIONS, PrepError(None, f"no photos or videos in {', '.join(sources or (from_list or '',))}"))
    ref = _reference(person, None, detector, weights_dir)
    log = RunLog(report_path, "blur")
    on_sheet: list[dict[str, Any]] = []  # only what the contact sheet shows is kept (SHEET_TILES)
    sheet_counts = {"rejected": 0, "borderline": 0, "shown": 0}
    if move_dir:  # photos set aside by an earlier run into a folder under a source are not scored and moved again
        aside = Path(move_dir).resolve()
        inputs = ((p, i) for p, i in inputs if not Path(p).resolve().is_relative_to(aside))
    for rec in run_items(score_file, ((p, det, cfg, ref) for p, _ in inputs), _run_options(runner, workers, ray_address), None, total, "blur"):
        if move_dir and rec["status"] == "ok" and rec["kind"] == "photo" and rec.get("blurry"):
            try:
                rec["moved_to"] = str(move_rejected(rec["path"], move_dir, rec["reason"]))
            except OSError as exc:  # a read-only folder, another file system: said, and the batch goes on
                problem = f"blurred, but could not be moved to {move_dir}: {exc.strerror or exc}"
                rec = {**rec, "status": "error", "error": problem, "message": f"{rec['path']}: {problem}"}
        log.add(rec)
        if sheet_path and rec["status"] == "ok":
            _keep_for_sheet(rec, on_sheet, sheet_counts)
        if rec["status"] == "error":
            click.echo(f"prep: {rec['message']}", err=True)
            continue
        if rec["kind"] == "photo" and rec.get("other_person"):
            click.echo(json.dumps({k: v for k, v in rec.items() if k not in ("kind", "status")}) if as_json else f"other  {rec['path']}  ({rec['why']})")
        elif rec["kind"] == "photo":
            if as_json:
                click.echo(json.dumps({k: v for k, v in rec.items() if k not in ("kind", "status", "threshold")}))
            else:
                tag = "reject" if rec["blurry"] else "keep  "
                click.echo(f"{tag} {rec['score']:+.3f} {rec['path']}" + (f"  ({rec['why']})" if rec["why"] else "") + (f"  -> {rec['moved_to']}" if "moved_to" in rec else ""))
        else:
            if as_json:
                for fr in rec["frames"]:
                    click.echo(json.dumps({"path": rec["path"], "frame": fr["frame"], "time": fr["time"], "score": fr["score"], "blurry": fr["blurry"], **{k: fr[k] for k in ("person", "similarity") if k in fr}}))
            else:
                segs = ", ".join(f"{a}-{b}" if a != b else f"{a}" for a, b in rec["segments"]) or "none"
                click.echo(f"video  {rec['path']}: {len(rec['frames'])} frames, {rec['blurred']} blurred (frames {segs}), median score {rec['median']}, {rec['no_face']} without " + ("the person" if "person" in rec else "a face"))
    if sheet_path:
        _blur_sheet(sheet_path, on_sheet, det, sheet_counts)
    log.finish({"config": cfg.__dict__})
    _finish(log, quiet=as_json)


SHEET_TILES = 240  # faces on a contact sheet at most: the first ones of the run (the title counts them all)


def _keep_for_sheet(rec: dict[str, Any], kept: list[dict[str, Any]], counts: dict[str, int]) -> None:
    """Count a record's rejected and borderline faces, and keep what the sheet will show of
    it (a video: those frames only, 60 at most), while the sheet has room: memory stays flat
    however long the run."""
    if rec["kind"] == "video":
        picks = [f for f in rec.get("frames", []) if f["blurry"] or f["borderline"]]
        counts["rejected"] += sum(f["blurry"] for f in picks)
        counts["borderline"] += sum(not f["blurry"] for f in picks)
        room = min(60, SHEET_TILES - counts["shown"])
        if picks and room > 0:
            kept.append({k: v for k, v in rec.items() if k != "frames"} | {"frames": picks[:room]})
            counts["shown"] += len(picks[:room])
    elif rec.get("blurry") or rec.get("borderline"):
        counts["rejected" if rec.get("blurry") else "borderline"] += 1
        if counts["shown"] < SHEET_TILES:
            kept.append(rec)
            counts["shown"] += 1


def _blur_sheet(path: str, records: list[dict[str, Any]], det: Any, counts: dict[str, int]) -> None:
    from .blurscan import detector_for, face_crop, video_tiles
    from .detect import main_face
    from .images import read_image
    from .sheet import AMBER, RED, Tile, write_sheet

    tiles = []
    for rec in records:
        if rec["status"] != "ok":
            continue
        if rec["kind"] == "photo" and (rec["blurry"] or rec["borderline"]):
            img = read_image(rec.get("moved_to", rec["path"]))
            kind = rec["reason"]["kind"].replace("_", " ").upper() if rec["reason"] else "borderline"
            tiles.append(Tile(face_crop(img, main_face(detector_for(det).detect(img)) if rec["on_face"] else None), [Path(rec["path"]).name, f"score {rec['score']:+.3f}" + (f" x{rec['enlargement']:.1f}" if rec.get("enlargement", 0) > 1 else ""), kind if rec["blurry"] else f"borderline ({kind.lower()})" if rec["reason"] else "borderline"], RED if rec["blurry"] else AMBER))
        elif rec["kind"] == "video":
            crops = video_tiles(rec["path"], [f["frame"] for f in rec["frames"]], None, det)
            for f in rec["frames"]:
                if f["frame"] in crops:
                    tiles.append(Tile(crops[f["frame"]], [f"{Path(rec['path']).name[:18]} #{f['frame']}", f"{f['score']:+.3f} (clip {f['reference']:+.3f})", "REJECTED" if f["blurry"] else "borderline"], RED if f["blurry"] else AMBER))
    more = counts["rejected"] + counts["borderline"] - len(tiles)
    write_sheet(path, tiles, f"prep blur: {counts['rejected']} rejected, {counts['borderline']} borderline" + (f" ({len(tiles)} shown)" if more > 0 else ""))
    click.echo(f"contact sheet: {path}", err=True)


@main.command()
@click.argument("sources", nargs=-1, type=click.Path())
@click.option("-o", "--out", "out_dir", type=click.Path(file_okay=False), required=True, help="Folder for the frames (00001.png, ...) and frames.json; with several videos, one subfolder OUT/<name>/ each.")
@click.option("--fps", type=click.FloatRange(0, 240, min_open=True), default=None, help="Frame rate to extract at (default: every frame of the source).")
@click.option("--reject-blur", is_flag=True, help="Put frames blurred relative to their clip in OUT/rejected/ instead of the kept set.")
@click.option("--layout", type=click.Choice(["plain", "dfl"]), default="plain", show_default=True, help="dfl: a DeepFaceLab workspace, OUT/workspace/data_src.mp4 and OUT/workspace/data_src/%05d.png.")
@click.option("--dst", is_flag=True, help="With --layout dfl: write data_dst instead of data_src.")
@tiers_option
@person_option
@group_by_option
@detector_options
@click.option("--workers", type=int, default=1, show_default=True, help="Videos processed at once.")
@runner_options
@report_option
@_fail_cleanly
def frames(sources: tuple[str, ...], out_dir: str, fps: float | None, reject_blur: bool, layout: str, dst: bool, tiers: tuple[int, ...] | None, person: tuple[str, ...], group_by: str | None, detector: str | None, weights_dir: str | None, workers: int, runner: str, ray_address: str | None, from_list: str | None, report_path: str | None) -> None:
    """Extract videos' frames as PNG files named as DeepFaceLab expects (00001.png, ...).

    Every face is scored for blur; with --reject-blur the frames judged blurred against the
    clip itself go to OUT/rejected/. OUT/frames.json lists scores and decisions. One video
    writes into OUT; several (files, folders, --from-list) each into OUT/<name>/. With
    --group-by person and several videos, the people are clustered across all of them:
    OUT/person_NN/<name>/00001.png, ... and one OUT/person_NN/sheet.png per person.
    """
    from .blurdecide import BlurConfig
    from .frames import done, extract_frames, video_group_dir
    from .probe import VIDEO_EXTENSIONS
    from .runlog import RunLog
    from .runner import run_items

    single = len(sources) == 1 and not from_list and not Path(sources[0]).is_dir()
    inputs, total = _inputs(sources, from_list, VIDEO_EXTENSIONS, PrepError(None, f"no videos in {', '.join(sources or (from_list or '',))}"))
    video_copy = None
    if dst and layout != "dfl":
        raise click.UsageError("--dst names DeepFaceLab's data_dst: use it with --layout dfl")
    if layout == "dfl":
        if not single:
            raise PrepError(None, "--layout dfl takes one video (a DeepFaceLab workspace holds one data_src or data_dst)")
        dropping = [opt for opt, on in (("--fps", fps is not None), ("--reject-blur", reject_blur), ("--person", bool(person)), ("--group-by", bool(group_by)), ("--tiers", bool(tiers))) if on]
        if dst and dropping:  # DeepFaceLab merges data_dst frame by frame back into data_dst.mp4, at its rate, with its sound
            raise PrepError(None, f"--dst keeps every frame of the video DeepFaceLab merges back into data_dst.mp4: {', '.join(dropping)} would drop or resample frames and put its sound out of sync")
        from .layouts import dfl_workspace

        video_copy, frames_dir = dfl_workspace(out_dir, sources[0], "data_dst" if dst else "data_src")
        out_dir = str(frames_dir)
    if person and group_by:
        raise PrepError(None, "--person and --group-by person do not go together: --person keeps one person, --group-by sorts everyone")
    ref = _reference(person, group_by, detector, weights_dir)
    det, bcfg = _detect_settings(detector, weights_dir), BlurConfig.resolve()
    # several videos grouped by person: frames wait in OUT/.prep/frames/<name>/ until all are done
    across = bool(group_by) and not single
    if across:
        from .framegroup import earlier_videos

        inputs = _no_earlier_persons(inputs, out_dir, earlier_videos, "frames of {} video(s)")
    items = ((p, out_dir if single else str(Path(out_dir) / item_id), det, bcfg, fps, reject_blur, None if single else False, tiers or (), ref, group_by, str(video_group_dir(out_dir, item_id)) if across else None) for p, item_id in inputs)
    log = RunLog(report_path, "frames")
    records = run_items(extract_frames, items, _run_options(runner, workers, ray_address), done, total, "frames")
    held: list[dict[str, Any]] = []  # across: the records, in input order, for the run's grouping
    for rec in records if across else log.stream(records):
        if across:
            held.append(rec)
        if rec["status"] == "error":
            click.echo(f"prep: {rec['message']}", err=True)
        elif rec["status"] == "skipped":
            if video_copy is not None:  # a run stopped after its frames, before the copy
                _copy_unless_there(rec["source"], video_copy)
            click.echo(f"skip {rec['source']}: already extracted in {rec['out']}")
        else:
            if video_copy is not None:
                _copy_unless_there(rec["source"], video_copy)
            where = f", {len(rec['blurred_frames'])} blurred set aside in {rec['out']}/rejected" if reject_blur else f", {len(rec['blurred_frames'])} judged blurred (kept; use --reject-blur)"
            who = f", {len(rec['person']['frames_without'])} without the person removed" if rec.get("person") else ""
            if "local_persons" in rec:
                who = f", {len(rec['local_persons'])} person(s) seen, {len(rec['frames_without_person'])} frames without anyone removed"
            click.echo(f"ok   {rec['source']} -> {rec['out']}: {rec['kept']} frames kept{who}{where}; report {rec['out']}/frames.json")
            for g in rec.get("persons", []):
                click.echo(f"     {Path(rec['out']) / g['person']}: {g['frames']} frames ({', '.join(f'{a}-{b}' for a, b in g['segments'])}); sheet {Path(rec['out']) / g['person'] / 'sheet.png'}")
    if across:
        from .framegroup import group_across

        persons = group_across(out_dir, held)
        for g in persons:
            also = f" (also {', '.join(g['folders'][1:])})" if len(g["folders"]) > 1 else ""
            click.echo(f"{g['folders'][0]}: {g['frames']} frames from {g['videos']} video(s); sheet {g['sheets'][0]}{also}")
        for rec in held:
            log.add(rec)
    log.finish({"persons": persons} if across else {})
    _finish(log)


@main.command()
@click.argument("sources", nargs=-1, type=click.Path())
@click.option("-o", "--out", "out_dir", type=click.Path(file_okay=False), required=True, help="Output folder for the pairs.")
@click.option("--degrade", "degradation", default="bsrgan", show_default=True, help="Degradation preset: bsrgan, bsrgan-plus, realesrgan, gfpgan (files in presets/).")
@click.option("--size", type=int, default=512, show_default=True, help="Side of the sharp (HQ) images.")
@click.option("--scale", type=click.Choice(["1", "2", "4"]), default="1", show_default=True, help="1: restoration (LQ at HQ size); 2 or 4: super-resolution (LQ is HQ/scale).")
@click.option("--val-fraction", type=float, default=0.05, show_default=True, help="Share of photos that go to val (chosen from the seed and the file, not at random per run).")
@click.option("--copies", type=int, default=1, show_default=True, help="Degraded versions of each sharp image.")
@click.option("--seed", type=int, default=0, show_default=True, help="Same seed, same bytes, whatever --workers is.")
@click.option("--align/--no-align", default=False, show_default=True, help="Find faces in in-the-wild photos and align each to the FFHQ template.")
@click.option("--max-upscale", type=float, default=1.25, show_default=True, help="--align: skip faces that would have to be enlarged more than this to reach --size.")
@click.option("--layout", type=click.Choice(["gpen", "basicsr", "gpen-native"]), default="gpen", show_default=True, help="Folder layout of the trainer.")
@tiers_option
@person_option
@group_by_option
@detector_options
@click.option("--workers", type=int, default=1, show_default=True, help="Processes.")
@runner_options
@report_option
@_fail_cleanly
def pairs(sources: tuple[str, ...], out_dir: str, degradation: str, size: int, scale: str, val_fraction: float, copies: int, seed: int, align: bool, max_upscale: float, layout: str, tiers: tuple[int, ...] | None, person: tuple[str, ...], group_by: str | None, detector: str | None, weights_dir: str | None, workers: int, runner: str, ray_address: str | None, from_list: str | None, report_path: str | None) -> None:
    """Make sharp/degraded training pairs from a folder of face photos.

    Writes OUT/train/sharp, OUT/train/blurry, OUT/val/sharp, OUT/val/blurry (lossless PNG, a
    pair shares its name) and OUT/degradations.jsonl with every drawn parameter. Photos
    already done are skipped when the command runs again.
    """
    from .images import IMAGE_EXTENSIONS
    from .pairs import PairsConfig
    from .runner import open_runner

    none_found = PrepError(sources[0], "no photos found") if len(sources) == 1 and not from_list else PrepError(None, f"no photos in {', '.join(sources or (from_list or '',))}")
    _inputs(sources, from_list, IMAGE_EXTENSIONS, none_found)  # fail before starting a runner
    if person and group_by:
        raise PrepError(None, "--person and --group-by person do not go together: --person keeps one person, --group-by sorts everyone")
    ref = _reference(person, group_by, detector, weights_dir)
    if align or ref is not None:  # faces are searched only to align them or to find the person
        detector, weights_dir = _resolve_detector(detector, weights_dir)
    failed = False
    # every size's settings are checked before any is made (--tiers 64,66 --scale 4 wrote 64, then failed)
    configs = [PairsConfig.resolve(degrade=degradation, size=tier, scale=int(scale), val_fraction=val_fraction, copies=copies, seed=seed, align=align, max_upscale=max_upscale, layout=layout, detector=detector, weights_dir=weights_dir, person=ref, group_by=group_by) for tier in tiers or (size,)]
    with open_runner(_run_options(runner, workers, ray_address)) as run:
        for tier, cfg in zip(tiers or (size,), configs):
            inputs, total = _inputs(sources, from_list, IMAGE_EXTENSIONS, none_found)
            failed |= _pairs_run(inputs, total, str(Path(out_dir) / str(tier)) if tiers else out_dir, cfg, run, _tier_report(report_path, tier) if tiers else report_path)
    if failed:
        sys.exit(1)


def _tier_report(report_path: str | None, tier: int) -> str | None:
    """--tiers: each size's sets are a run of their own, with a report of their own beside the
    one asked for (``run.json`` -> ``run.128.json``, ``run.256.json``)."""
    if report_path is None:
        return None
    p = Path(report_path)
    return str(p.with_name(f"{p.stem}.{tier}{p.suffix}"))


def _pairs_run(inputs: Any, total: int | None, out_dir: str, cfg: Any, run: Any, report_path: str | None) -> bool:
    from .fsutil import check_writable_dir
    from .pairs import STAGING, done, earlier_items, finish, group_by_person, make_pairs
    from .runlog import RunLog

    check_writable_dir(out_dir)
    if cfg.group_by:
        inputs = _no_earlier_persons(inputs, out_dir, earlier_items, "pairs of {} photo(s)")
    # --group-by person: pairs are written to a staging folder, then moved into their person's folder
    work_dir = str(Path(out_dir) / STAGING) if cfg.group_by else out_dir
    items = ((p, i, work_dir, cfg) for p, i in inputs)
    log = RunLog(report_path, "pairs")
    records = (_echo_pairs(rec, cfg) for rec in run.map(make_pairs, items, done, total, "pairs"))
    persons = None
    if cfg.group_by:  # the persons are known once every photo is done: records are held, then logged
        held = list(records)
        persons = group_by_person(out_dir, cfg, held)
        summary = finish(work_dir, cfg, log.stream(held))
        summary["persons"] = persons
        for g in persons:
            click.echo(f"{Path(out_dir) / g['person']}: {g['faces']} faces, {g['pairs']} pairs; sheet {Path(out_dir) / g['person'] / 'sheet.png'}")
    else:
        summary = finish(out_dir, cfg, log.stream(records))
    n = summary["pairs"]
    done_before, empty = log.counts.get("skipped", 0), log.counts.get("empty", 0)
    if n["train"] and not n["val"] and cfg.layout in ("basicsr", "gpen-native"):
        click.echo(f"prep: warning: no val pairs, and {cfg.layout}'s trainer needs some: raise --val-fraction (now {cfg.val_fraction:g}) or add photos", err=True)
    click.echo(f"{out_dir}: {n['train']} train and {n['val']} val pairs ({cfg.degrade}, scale {cfg.scale}, layout {cfg.layout})"
               + (f"; {done_before} photos done before" if done_before else "") + (f"; {summary['faces_skipped']} faces too small" if summary["faces_skipped"] else "") + (f"; {summary['faces_at_edge']} faces at the photo's edge" if summary["faces_at_edge"] else "") + (f"; {summary['other_people']} faces of other people left out" if summary["other_people"] else "") + (f"; {empty} photos gave no pair" if empty else "")
               + (f"; {summary['errors']} photos failed" if summary["errors"] else "") + (f"; {len(persons)} persons, parameters in each {Path(out_dir) / 'person_NN' / 'degradations.jsonl'}" if persons is not None else f"; parameters in {Path(out_dir) / 'degradations.jsonl'}"))
    log.finish({"summary": summary, "out": out_dir})
    return bool(summary["errors"])


def _echo_pairs(rec: dict[str, Any], cfg: Any) -> dict[str, Any]:
    if rec["status"] == "error":
        click.echo(f"prep: {rec['message']}", err=True)
    elif rec["status"] == "empty":
        click.echo(f"skip {rec['source']}: {rec['reason']}")
    elif rec["status"] == "ok" and rec["skipped_faces"]:
        other = sum(1 for f in rec["skipped_faces"] if "person" in f)
        small = len(rec["skipped_faces"]) - other
        what = ", ".join(x for x in (f"{small} face(s) too small for {cfg.size} px" if small else "", f"{other} face(s) of other people" if other else "") if x)
        click.echo(f"     {rec['source']}: {what} skipped, {len(rec['pairs'])} pair(s) kept")
    return rec


@main.command()
@click.argument("source", type=click.Path(), required=False)
@click.option("-o", "--out", "out_dir", type=click.Path(file_okay=False), required=True, help="Output folder (mirrors the source's folders).")
@click.option("--preset", default="dfl", show_default=True, help="Augmentation preset: dfl (colour and light, images) or pairs (train/sharp + train/blurry, aligned).")
@click.option("--copies", type=int, default=1, show_default=True, help="Augmented versions of each image or pair.")
@click.option("--seed", type=int, default=0, show_default=True, help="Same seed, same bytes, whatever --workers is.")
@click.option("--workers", type=int, default=1, show_default=True, help="Processes.")
@runner_options
@report_option
@_fail_cleanly
def augment(source: str | None, out_dir: str, preset: str, copies: int, seed: int, workers: int, runner: str, ray_address: str | None, from_list: str | None, report_path: str | None) -> None:
    """Write augmented copies of photos or of sharp/degraded pairs (albumentations 2 pipelines from presets/).

    Files are named <name>__aug<k>.png so each shows its source and its copy number.
    """
    from itertools import chain

    from .augment import AugmentConfig, augment_item, carry_basicsr_options, claim_output, done, plan
    from .fsutil import check_writable_dir
    from .runlog import RunLog
    from .runner import run_items

    cfg = AugmentConfig.resolve(preset, copies, seed)
    if not source and not from_list:
        raise click.UsageError("give a folder or a file, or --from-list FILE")
    planned = plan(source, cfg) if source else []
    listed: Any = ()
    total: int | None = len(planned)
    if from_list:
        if cfg.mode == "pairs":
            raise PrepError(from_list, "--from-list lists images; the pairs preset reads a prep pairs folder (give it as the argument)")
        inputs, n = _inputs((), from_list, set(), PrepError(from_list, "no images listed"))
        listed = ((p, None, "", item_id) for p, item_id in inputs)  # named by the manifest's id (else the stem)
        total = None if n is None else n + len(planned)
    elif not planned:
        raise PrepError(source, "no images found")
    check_writable_dir(out_dir)
    claim_output(out_dir, cfg)
    items = ((src, out_dir, cfg, lq, rel, name) for src, lq, rel, name in chain(planned, listed))
    log = RunLog(report_path, "augment")
    n_out = 0
    for rec in log.stream(run_items(augment_item, items, _run_options(runner, workers, ray_address), done, total, "augment")):
        n_out += len(rec.get("outputs", []))
        if rec["status"] == "error":
            click.echo(f"prep: {rec['message']}", err=True)
    options = carry_basicsr_options(source, out_dir) if cfg.mode == "pairs" else None
    click.echo(f"{out_dir}: {n_out} augmented {'pairs' if cfg.mode == 'pairs' else 'images'} from {log.n} sources (preset {cfg.preset}, seed {seed})" + (f"; BasicSR options {options}" if options else ""))
    log.finish({})
    _finish(log, quiet=True)


@main.command()
@click.argument("path", type=click.Path())
@click.option("--layout", type=click.Choice(["geneface", "hallo", "flat", "gpen", "basicsr", "gpen-native", "dfl"]), default=None, help="Layout to check against (default: guessed from the folders).")
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
@detector_options
@_fail_cleanly
def check(path: str, layout: str | None, as_json: bool, detector: str | None, weights_dir: str | None) -> None:
    """Validate a dataset before training: every problem with its file and its fix.

    Exit code 0 when clean (warnings allowed), 1 when there are errors.
    """
    from .check import check as run_check
    from .detect import create_detector

    # an image set needs no detector (a missing one matters only for a video set, and is then one line)
    rep = run_check(path, layout, lambda: create_detector(detector or "auto", weights_dir))
    if as_json:
        click.echo(json.dumps(rep.to_dict(), indent=2))
    else:
        facts = ", ".join(f"{v} {k.replace('_', ' ')}" for k, v in rep.facts.items())
        click.echo(f"{path}: layout {rep.layout}; {facts}")
        if rep.problems:
            w = max(len(p.file) for p in rep.problems)
            for p in rep.problems:
                click.echo(f"{p.level:7} {p.file:{w}}  {p.problem}  -> {p.fix}")
        click.echo(f"{len(rep.errors)} errors, {len(rep.warnings)} warnings")
    if rep.errors:
        sys.exit(1)


@main.command()
@click.argument("sources", nargs=-1, type=click.Path())
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object per clip and face (path, face, speaking, score, offset_frames, confidence, verdict, why).")
@click.option("--fix-offset", "fix_offset", is_flag=True, help="Write OUT/<name>.mp4 for each clip whose main face's audio offset is trusted and not zero: the video copied, the audio moved onto the lips.")
@click.option("-o", "--out", "out_dir", type=click.Path(file_okay=False), default=None, help="With --fix-offset: the folder for the fixed clips (and a <name>.json beside each). Clips fixed before are skipped.")
@click.option("--preset", default="hallo", show_default=True, help="Preset whose [speech] table sets the thresholds (default, geneface, hallo, latentsync) or a .toml file.")
@detector_options
@click.option("--workers", type=int, default=1, show_default=True, help="Clips scored at once.")
@runner_options
@report_option
@_fail_cleanly
def speech(sources: tuple[str, ...], as_json: bool, fix_offset: bool, out_dir: str | None, preset: str, detector: str | None, weights_dir: str | None, workers: int, runner: str, ray_address: str | None, from_list: str | None, report_path: str | None) -> None:
    """Is each face of existing clips the one speaking, in sync? (files or folders of videos)

    For face-centred clips that already exist (a Hallo or LatentSync dataset, HDTF,
    VoxCeleb-style folders). Every face on screen for 2 s or more gets a verdict under
    the preset's [speech] rules: ok, not_speaking (a listener, a voice-over), no_speech
    (silence, music) or out_of_sync, and the measured audio offset (frames at 25 fps,
    positive when the voice comes after the lips).
    """
    from .config import CropConfig
    from .fsutil import check_writable_dir
    from .probe import VIDEO_EXTENSIONS
    from .runlog import RunLog
    from .runner import run_items
    from .speechscan import done, score_clip

    if fix_offset and not out_dir:
        raise click.UsageError("--fix-offset needs -o/--out: the folder for the fixed clips")
    if out_dir and not fix_offset:
        raise click.UsageError("-o/--out is where --fix-offset writes: give --fix-offset too")
    if out_dir:
        out = Path(out_dir).resolve()
        for src in sources:  # the fixed clips would replace their sources, or be read as sources on a rerun
            walked = Path(src).is_dir()  # a folder is walked again on a rerun; a file is not
            home = Path(src).resolve() if walked else Path(src).resolve().parent
            if out == home or (walked and out.is_relative_to(home)):
                raise click.UsageError(f"-o {out_dir} is {'the folder' if out == home else 'inside the folder'} of {src}: give a folder of its own for the fixed clips")
    cfg = CropConfig.resolve(preset, speech="require", detector=detector, weights_dir=weights_dir, speech_weights=weights_dir)
    cfg = _require_speech_model(cfg)
    name, folder = _resolve_detector(cfg.detector, cfg.weights_dir, quiet=as_json)
    cfg = dataclasses.replace(cfg, detector=name, weights_dir=folder)
    inputs, total = _inputs(sources, from_list, VIDEO_EXTENSIONS, PrepError(None, f"no video files in {', '.join(sources or (from_list or '',))}"))
    if out_dir:
        check_writable_dir(out_dir)
    items = ((p, cfg, out_dir, item_id) for p, item_id in inputs)
    log = RunLog(report_path, "speech")
    for rec in log.stream(run_items(score_clip, items, _run_options(runner, workers, ray_address), done if out_dir else None, total, "speech")):
        _echo_speech_clip(rec, as_json)
    log.finish({"config": cfg.to_dict(), **({"out": out_dir} if out_dir else {})})
    _finish(log, quiet=as_json)


def _require_speech_model(cfg: Any) -> Any:
    """On the driver, once: ``cfg`` with the speech model's folder; without the model there is
    nothing to measure (one line says what to put where)."""
    from .video.speaking import decide_model

    cfg = decide_model(cfg)
    if cfg.speech_missing:
        raise PrepError(None, cfg.speech_missing)
    return cfg


JSON_FIELDS = ("path", "face", "start", "end", "speaking", "score", "offset_frames", "confidence", "sync", "voiced", "verdict", "why")


def _echo_speech_clip(rec: dict[str, Any], as_json: bool) -> None:
    """``prep speech``'s lines for one clip: one per face (JSON or words), errors on stderr."""
    if rec["status"] == "error" and not rec.get("faces"):
        click.echo(f"prep: {rec['message']}", err=True)
        return
    fix = {k: rec[k] for k in ("fixed", "fix") if k in rec}
    if as_json:
        if not rec["faces"]:
            click.echo(json.dumps({"path": rec["source"], "face": None, "verdict": "no_face", "why": rec.get("reason"), **fix}))
        for f in rec["faces"]:
            main = f["face"] is not None and f["face"] == rec.get("main_face")
            click.echo(json.dumps({**{k: f.get(k) for k in JSON_FIELDS}, **(fix if main else {}), **({"skipped": True} if rec["status"] == "skipped" else {})}))
    else:
        if not rec["faces"]:
            click.echo(f"none {rec['source']}: {rec.get('reason')}")
        for f in rec["faces"]:
            click.echo(_speech_line(f))
        if rec["status"] == "skipped":
            click.echo(f"     skip: fixed in an earlier run -> {rec.get('fixed')}")
        elif "fixed" in rec:
            ms = rec["advance_ms"]
            click.echo(f"     fixed -> {rec['fixed']} (audio moved {abs(ms):g} ms {'earlier' if ms > 0 else 'later'})")
        elif "fix" in rec:
            click.echo(f"     fix: {rec['fix']}")
    if rec["status"] == "error":
        click.echo(f"prep: {rec['message']}", err=True)


def _speech_line(f: dict[str, Any]) -> str:
    """``ok|rej  path [face k]: speaking 62%, sync 2.9, offset +3 frames (confidence 1.00)``, and why when rejected."""
    tag = "ok  " if f["verdict"] == "ok" else "rej "
    where = f["path"] + (f" [face {f['face']}]" if f["face"] is not None else "")
    facts = []
    if f["speaking"] is not None:
        facts.append(f"speaking {f['speaking']:.0%}")
    if f["sync"] is not None:
        facts.append(f"sync {f['sync']:.1f}")
    if f["offset_frames"] is not None:
        facts.append(f"offset {f['offset_frames']:+d} frames (confidence {f['confidence']:.2f})".replace("+0 ", "0 "))
    reason = f"{f['verdict']}: {f['why']}" if f["verdict"] != "ok" else ""
    return f"{tag} {where}: " + "; ".join(x for x in (", ".join(facts), reason) if x)


def _finish(log: Any, quiet: bool = False) -> None:
    """The counts line (for more than one item) and exit code 1 when an item failed."""
    counts = log.counts
    if log.n > 1 and not quiet:
        click.echo(", ".join(f"{n} {k}" for k, n in sorted(counts.items())))
    if counts.get("error"):
        sys.exit(1)


if __name__ == "__main__":  # pragma: no cover
    main()
