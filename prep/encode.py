"""Write the cropped clip: H.264 yuv420p, square pixels, constant frame rate, AAC audio in sync.

Two ways, one output format:

* :func:`encode_fixed` — one window for the clip: the whole job is an ffmpeg filter graph
  (crop, pad, scale), so it runs at ffmpeg's own speed. :func:`encode_fixed_reading` runs the
  same graph and also pipes out the analysis's small frames, so one decode serves both.
* :class:`FrameEncoder` — per-frame windows (track mode): frames are warped in Python and
  streamed into ffmpeg's stdin, one at a time.

Both share :func:`audio_chain`, which puts the audio on the output timeline: output t=0 is
the first video frame of the source, audio before it is trimmed, a late audio start is
padded with silence, and the tail is padded or cut to the video's duration.
"""

from __future__ import annotations

import subprocess
import tempfile
from pathlib import Path
from typing import Any, Iterator

import ffmpeg
import numpy as np

from .decode import read_frames, scaled_size, seek, small_frames, timeline, widen_pipe
from .errors import PrepError
from .ffmpeg import ffmpeg_exe
from .probe import VideoInfo

FILL_MODES = {"edge": "smear", "mirror": "mirror"}


def audio_chain(info: VideoInfo, fps: float | None = None, start: int = 0, advance: float = 0.0) -> Any:
    """The source's first audio stream, shifted onto the output timeline (or None); with
    ``start``, a stretch's timeline that begins at output frame ``start``; ``advance`` seconds
    moves the audio earlier (a measured lag of the voice behind the lips, corrected)."""
    if not info.has_audio:
        return None
    opts, shift = seek(info, fps, start)  # the seek margin (0.3 s) covers an advance either way
    a = ffmpeg.input(info.path, **opts).audio
    # ffmpeg reads timestamps relative to the container start; the video starts info.start_time after it.
    offset = (-info.start_time if shift is None else shift) - (start / fps if start and fps else 0.0) - advance
    a = a.filter("asetpts", f"PTS{offset:+.6f}/TB")
    a = a.filter("aresample", **{"async": 1, "first_pts": 0})  # trims before 0, fills a late start
    return a.filter("apad")


def output_args(cfg: Any, n_frames: int) -> dict[str, Any]:
    return {
        "vcodec": "libx264",
        "crf": cfg.crf,
        "preset": cfg.x264_preset,
        "pix_fmt": "yuv420p",
        "r": cfg.fps,
        "t": f"{n_frames / cfg.fps:.6f}",
        "movflags": "+faststart",
        "acodec": "aac",
        "audio_bitrate": cfg.audio_bitrate,
    }


def _run(args: list[str], src: str) -> None:
    with tempfile.TemporaryFile() as err:
        proc = subprocess.run(args, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=err)
        if proc.returncode != 0:
            err.seek(0)
            raise PrepError(src, f"ffmpeg failed to encode ({_first_error(err.read())})")


def _first_error(data: bytes) -> str:
    """The root cause among ffmpeg's error lines: the first one (later lines are consequences)."""
    lines = [ln.strip() for ln in data.decode(errors="replace").splitlines() if ln.strip()]
    return lines[0] if lines else "no message"


def _global(stream: Any) -> Any:
    return stream.global_args("-nostdin", "-hide_banner", "-loglevel", "error", "-y")


def encode_fixed(info: VideoInfo, window: tuple[int, int, int], pad_mode: str, cfg: Any, n_frames: int, dest: Path, start: int = 0, audio_advance: float = 0.0) -> None:
    """Crop the integer window ``(x, y, side)`` (display px) from every frame and encode to
    ``dest``: ``n_frames`` frames of the output timeline from frame ``start`` on."""
    opts, shift = seek(info, cfg.fps, start)
    v = timeline(ffmpeg.input(info.path, **opts).video, cfg.fps, shift, start)
    audio = audio_chain(info, cfg.fps, start, audio_advance)
    args = _global(fixed_output(info, v, audio, window, pad_mode, cfg, n_frames, dest)).compile(cmd=ffmpeg_exe())
    _run(args, info.path)


def encode_fixed_reading(info: VideoInfo, window: tuple[int, int, int], pad_mode: str, outputs: list[tuple[Any, Path]], n_frames: int, max_side: int) -> Iterator[np.ndarray]:
    """One decode, two jobs: encode the fixed ``window`` once per ``(cfg, dest)`` of ``outputs``
    (sizes) and yield the analysis frames, exactly as ``iter_frames(info, fps, max_side)``
    yields them. The files are whole once the frames have all been read; stopping early
    stops the encode too."""
    fps = outputs[0][0].fps
    v = timeline(ffmpeg.input(info.path).video, fps)
    branches = v.split()
    audio = audio_chain(info, fps)
    sounds = audio.asplit() if audio is not None and len(outputs) > 1 else None
    outs = [fixed_output(info, branches[k], audio if sounds is None else sounds[k], window, pad_mode, cfg, n_frames, dest) for k, (cfg, dest) in enumerate(outputs)]
    w, h = scaled_size(info, max_side)
    outs.append(small_frames(branches[len(outputs)], w, h, n_frames))
    args = _global(ffmpeg.merge_outputs(*outs)).compile(cmd=ffmpeg_exe())
    yield from read_frames(args, w, h, info.path, finish=True)


def move_audio(info: VideoInfo, cfg: Any, video: Path, n_frames: int, dest: Path, audio_advance: float) -> None:
    """``video``'s picture copied as it is, with the source's audio moved ``audio_advance``
    seconds earlier, into ``dest``: a clip encoded before the speech check measured its offset
    gets the corrected audio without encoding the picture again."""
    v = ffmpeg.input(str(video)).video
    out = ffmpeg.output(v, audio_chain(info, cfg.fps, 0, audio_advance), str(dest), vcodec="copy", acodec="aac", audio_bitrate=cfg.audio_bitrate, t=f"{n_frames / cfg.fps:.6f}", movflags="+faststart")
    _run(_global(out).compile(cmd=ffmpeg_exe()), info.path)


def fixed_output(info: VideoInfo, v: Any, audio: Any, window: tuple[int, int, int], pad_mode: str, cfg: Any, n_frames: int, dest: Path) -> Any:
    """The output that crops ``window`` from the timeline stream ``v`` (padding what lies
    outside the frame), scales it to ``cfg.size`` and writes it to ``dest`` with ``audio``
    (the :func:`audio_chain`, or None)."""
    x, y, side = window
    W, H = info.display_width, info.display_height
    if (W, H) != ((info.height, info.width) if info.rotation % 180 == 90 else (info.width, info.height)):
        v = v.filter("scale", W, H, flags="bicubic").filter("setsar", 1)  # non-square pixels -> square
    # the part of the window inside the frame, then padding back to the full window
    x0, y0 = max(0, x), max(0, y)
    x1, y1 = min(W, x + side), min(H, y + side)
    if x1 <= x0 or y1 <= y0:
        raise PrepError(info.path, "crop window lies entirely outside the frame")
    v = v.filter("crop", x1 - x0, y1 - y0, x0, y0, exact=1)
    pl, pt = x0 - x, y0 - y
    pr, pb = side - (x1 - x), side - (y1 - y)
    if pl or pt or pr or pb:
        # padded in 4:4:4: in 4:2:0 an odd width or offset rounds to the chroma grid, and the
        # picture's last column came out black (then smeared across an edge or mirror border)
        # (an explicit scale node converts, after the crop: left to the graph, the conversion
        # lands wherever format negotiation puts it, which differs once the decode is shared)
        v = v.filter("scale", flags="bicubic").filter("format", "yuv444p").filter("pad", side, side, pl, pt, color="black")
        if pad_mode in FILL_MODES:
            v = v.filter("fillborders", left=pl, right=pr, top=pt, bottom=pb, mode=FILL_MODES[pad_mode])
    v = v.filter("scale", cfg.size, cfg.size, flags="lanczos").filter("setsar", 1)
    streams = [v] + ([audio] if audio is not None else [])
    return ffmpeg.output(*streams, str(dest), **output_args(cfg, n_frames))


class FrameEncoder:
    """Stream ``size`` x ``size`` BGR frames into an H.264 file, with the source's audio muxed in sync."""

    def __init__(self, info: VideoInfo, cfg: Any, n_frames: int, dest: Path, start: int = 0, audio_advance: float = 0.0):
        size = cfg.size
        v = ffmpeg.input("pipe:", format="rawvideo", pix_fmt="bgr24", s=f"{size}x{size}", framerate=cfg.fps).video
        v = v.filter("setsar", 1)
        streams = [v] + ([audio_chain(info, cfg.fps, start, audio_advance)] if info.has_audio else [])
        args = _global(ffmpeg.output(*streams, str(dest), **output_args(cfg, n_frames))).compile(cmd=ffmpeg_exe())
        self.src = info.path
        self._err = tempfile.TemporaryFile()
        self._proc = subprocess.Popen(args, stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=self._err)
        widen_pipe(self._proc.stdin)
        self.frames = 0

    def write(self, frame: np.ndarray) -> None:
        assert self._proc.stdin is not None
        try:
            self._proc.stdin.write(memoryview(np.ascontiguousarray(frame)))  # no copy into bytes
        except BrokenPipeError:
            self.close()
        self.frames += 1

    def close(self) -> None:
        if self._proc.stdin and not self._proc.stdin.closed:
            try:
                self._proc.stdin.close()
            except BrokenPipeError:
                pass
        rc = self._proc.wait()
        self._err.seek(0)
        msg = self._err.read()
        self._err.close()
        if rc != 0:
            raise PrepError(self.src, f"ffmpeg failed to encode ({_first_error(msg)})")

    def abort(self) -> None:
        if self._proc.poll() is None:
            self._proc.kill()
        self._proc.wait()
        self._err.close()
