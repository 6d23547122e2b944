"""Decode video frames as a stream: upright, square-pixel, optionally resampled in time.

Frames come from the ffmpeg binary through a raw-video pipe, one at a time, so memory does
not grow with the length of the video. ffmpeg applies the rotation tag itself (autorotate),
and the sample aspect ratio is removed by scaling to the display size, so every later stage
works in one coordinate system: upright, square pixels (``VideoInfo.display_*``).
"""

from __future__ import annotations

import queue
import subprocess
import tempfile
import threading
from pathlib import Path
from typing import Any, Iterator

import ffmpeg
import numpy as np

from .errors import PrepError
from .ffmpeg import ffmpeg_exe
from .probe import VideoInfo


QUEUE = 4  # decoded frames kept ready ahead of the caller
PIPE_BYTES = 1 << 20  # the decoder's pipe, where the system allows (Linux's default limit for a user)


def frame_count_at(info: VideoInfo, fps: float | None) -> int:
    """Number of frames the decoder yields at ``fps`` (``None``: the source's own frames)."""
    if fps is None:
        return info.frame_count
    return max(1, int(round(info.duration * fps)))


def scaled_size(info: VideoInfo, max_side: int | None) -> tuple[int, int]:
    """Display size shrunk (never enlarged) so its longer side is at most ``max_side``; even numbers."""
    w, h = info.display_width, info.display_height
    if max_side is None or max(w, h) <= max_side:
        return w, h
    f = max_side / max(w, h)
    return max(2, int(round(w * f / 2)) * 2), max(2, int(round(h * f / 2)) * 2)


SEEK_MARGIN = 0.3  # s decoded (and dropped) before a stretch's first frame when seeking to it
# Containers whose seek lands on whatever packet comes before the time asked for, not on a key
# frame (MPEG-TS: .ts, .mts, .m2ts; MPEG-PS: .mpg, .vob): decoding from there gives frames
# without their references until the next key frame. Their seeks go to a key frame found first.
KEYLESS_SEEK = {"mpegts", "mpeg"}


def seek(info: VideoInfo, fps: float | None, start: int) -> tuple[dict, float | None]:
    """How to open ``info.path`` to read the output timeline from frame ``start`` on: the
    input options (a seek a little before it, so decoding starts near the stretch) and the
    shift that puts the seeked stream's timestamps back on the whole file's timeline."""
    if not start or fps is None:
        return {}, None
    ss = info.start_time + start / fps - SEEK_MARGIN
    if ss > 0 and info.container in KEYLESS_SEEK:
        ss = key_frame_before(info, ss)
    if ss <= 0:
        return {}, None
    return {"ss": f"{ss:.6f}"}, ss - info.start_time


def key_frame_before(info: VideoInfo, t: float) -> float:
    """A seek time (seconds from the container's start, as ffmpeg's ``-ss`` counts) that lands
    no later than the last video key frame shown at or before ``t``: just before that key
    frame's decoding time, or 0 when it is the first. Found by reading packets (no decoding)
    from a seek a little before ``t``, further back until a key frame is among them."""
    import av

    try:
        return _key_frame_before(info, t, av)
    except (av.error.FFmpegError, OSError):  # the packets cannot be read this way: decode from the start
        return 0.0


def _key_frame_before(info: VideoInfo, t: float, av: Any) -> float:
    back = 2.0
    with av.open(str(info.path)) as container:
        stream = container.streams.video[0]
        base = stream.time_base
        while True:
            lo = t - back
            if lo > 0:
                container.seek(int((info.container_start + lo) / base), stream=stream, backward=True)
            else:
                container.seek(0, stream=stream, backward=True)
            key = None
            for packet in container.demux(stream):
                if packet.dts is None or packet.pts is None:
                    continue
                if float(packet.dts * base) - info.container_start > t:
                    break
                if packet.is_keyframe and float(packet.pts * base) - info.container_start <= t:
                    key = float(packet.dts * base) - info.container_start
            if key is not None or lo <= 0:
                return max(0.0, (key or 0.0) - 0.001)
            back *= 2


def timeline(stream: ffmpeg.nodes.FilterableStream, fps: float | None, shift: float | None = None, start: int = 0) -> ffmpeg.nodes.FilterableStream:
    """Put the video on the output timeline: t=0 at the first frame, constant ``fps`` if given.

    Shared by the decoder and the encoder so that frame ``i`` means the same instant in both.
    ``start`` (with ``fps``) begins at output frame ``start`` instead, renumbered from 0; a
    stream opened with :func:`seek` passes its ``shift``.
    """
    stream = stream.filter("setpts", "PTS-STARTPTS" if shift is None else f"PTS+{shift:.6f}/TB")
    if fps is not None:
        stream = stream.filter("fps", fps=fps, round="near")
        if start:  # the fps filter's time base is one frame: pts is the frame number
            stream = stream.filter("trim", start_pts=start).filter("setpts", "PTS-STARTPTS")
    return stream


def iter_frames(
    info: VideoInfo,
    fps: float | None = None,
    max_side: int | None = None,
    interpolation: str = "area",
    fast: bool = False,
    start: int = 0,
    count: int | None = None,
    region: tuple[int, int, int, int] | None = None,
) -> Iterator[np.ndarray]:
    """Yield frames of ``info.path`` as ``HxWx3 uint8 BGR`` arrays, upright and square-pixelled.

    ``fps`` resamples to a constant rate on the output timeline (frame ``i`` at ``i/fps`` s
    after the first frame); ``max_side`` shrinks frames for cheap analysis passes. ``fast``
    skips the decoder's in-loop deblocking (slightly softer frames, ~10% faster decoding):
    for analysis only, never for frames that are written or scored. ``region`` ``(x, y, w,
    h)``: only that part of each frame, cut after the colour conversion (so its pixels are the
    whole frame's, byte for byte), for a reader that needs no more (less to pipe).
    """
    w, h = scaled_size(info, max_side)
    n = frame_count_at(info, fps) - start if count is None else count
    opts, shift = seek(info, fps, start)
    stream = timeline(ffmpeg.input(info.path, **opts, **({"skip_loop_filter": "all"} if fast else {})).video, fps, shift, start)
    out = small_frames(stream, w, h, n, interpolation, passthrough=fps is None, region=region)
    rw, rh = (region[2], region[3]) if region is not None else (w, h)
    yield from read_frames(out.global_args("-nostdin", "-hide_banner", "-loglevel", "error").compile(cmd=ffmpeg_exe()), rw, rh, info.path)


def small_frames(stream: ffmpeg.nodes.FilterableStream, w: int, h: int, n: int, interpolation: str = "area", passthrough: bool = False, region: tuple[int, int, int, int] | None = None) -> ffmpeg.nodes.OutputStream:
    """The output that pipes ``n`` frames of ``stream``, scaled to ``w`` x ``h``, as raw BGR
    (``region``: only that part of them, cut once they are BGR)."""
    stream = stream.filter("scale", w, h, flags=interpolation).filter("setsar", 1)
    if region is not None:
        x, y, rw, rh = region
        stream = stream.filter("format", "bgr24").filter("crop", rw, rh, x, y)
    return stream.output("pipe:", format="rawvideo", pix_fmt="bgr24", vframes=n, **({"fps_mode": "passthrough"} if passthrough else {}))


def read_frames(args: list[str], w: int, h: int, src: str | Path, finish: bool = False) -> Iterator[np.ndarray]:
    """Run the ffmpeg command ``args`` and yield the ``w`` x ``h`` BGR frames it writes to its
    stdout. Once the frames end, ffmpeg is waited for and a failure raised (a decoder killed or
    broken off mid-file is not the end of the video); stopping early stops it. ``finish``: the
    command also writes files (a failure then is the encode's)."""
    frame_bytes = w * h * 3
    with tempfile.TemporaryFile() as err:
        proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=err, bufsize=0)
        assert proc.stdout is not None
        widen_pipe(proc.stdout)
        # A reader thread keeps a few frames ready, so ffmpeg decodes the next frames while the
        # caller works on this one (a pipe holds less than a 1080p frame). Memory: QUEUE frames.
        frames: queue.Queue = queue.Queue(maxsize=QUEUE)
        stop = threading.Event()

        def reader() -> None:
            try:
                while not stop.is_set():
                    buf = _read_exact(proc.stdout, frame_bytes)
                    if buf is None:
                        break
                    frames.put(buf)
            finally:
                frames.put(None)

        thread = threading.Thread(target=reader, daemon=True)
        thread.start()
        count = 0
        ended = False
        try:
            while True:
                buf = frames.get()
                if buf is None:
                    break
                count += 1
                yield np.frombuffer(buf, np.uint8).reshape(h, w, 3)
            ended = True
        finally:
            stop.set()
            if proc.poll() is None and not ended:
                proc.kill()
            while thread.is_alive():  # unblock a reader waiting on a full queue
                try:
                    frames.get_nowait()
                except queue.Empty:
                    pass
                thread.join(timeout=0.05)
            proc.stdout.close()
            rc = proc.wait()
        if count == 0 or rc != 0:
            err.seek(0)
            msg = err.read().decode(errors="replace").strip().splitlines()
            what = "could not decode the video" if count == 0 else "failed to encode" if finish else f"stopped after {count} frames"
            raise PrepError(src, f"ffmpeg {what} ({msg[-1] if msg else f'exit {rc}'})")


def _read_exact(stream, n: int) -> bytearray | None:
    """``n`` bytes from a pipe, or None at its end: read straight into the frame's own buffer
    (a 1080p frame is about 100 reads of a pipe; joining them copied it once more)."""
    buf = bytearray(n)
    view = memoryview(buf)
    got = 0
    while got < n:
        k = stream.readinto(view[got:])
        if not k:
            return None
        got += k
    return buf


def widen_pipe(pipe) -> None:
    """A pipe of 1 MiB instead of 64 KiB where the system allows it (Linux): a frame then
    crosses in a few reads and writes, not a hundred (about 0.7 CPU s less a 20 s 1080p
    decode, measured). Elsewhere, or when refused, the pipe stays as it is."""
    try:
        import fcntl

        fcntl.fcntl(pipe.fileno(), getattr(fcntl, "F_SETPIPE_SZ", 1031), PIPE_BYTES)
    except (ImportError, OSError, ValueError):
        pass


def keyframes(info: VideoInfo, max_side: int | None, count: int) -> Iterator[np.ndarray]:
    """Up to ``count`` key frames spread evenly over the video, upright, square-pixelled and
    shrunk as :func:`iter_frames` shrinks them (PyAV's scaler, so not bit-identical): a cheap
    look that decodes one frame per seek and nothing between. Where seeking lands on a key
    frame already seen, it is not repeated."""
    import av

    w, h = scaled_size(info, max_side)
    turned = info.rotation % 180 == 90
    with av.open(str(info.path)) as container:
        stream = container.streams.video[0]
        stream.codec_context.skip_frame = "NONKEY"  # nothing but key frames is decoded
        base = stream.time_base
        seen = set()
        for k in range(count):
            t = info.container_start + info.start_time + info.duration * (k + 0.5) / count  # PyAV seeks on the raw clock
            container.seek(int(t / base), stream=stream, backward=True)
            frame = None
            for packet in container.demux(stream):
                if packet.pts is not None and packet.pts in seen:
                    break  # the key frame already looked at: not decoded again
                frame = next(iter(packet.decode()), None)
                if frame is not None:
                    break
            if frame is None or frame.pts in seen:
                continue
            seen.update((frame.pts, packet.pts))
            img = frame.to_ndarray(format="bgr24", width=h if turned else w, height=w if turned else h, interpolation="AREA")
            yield np.ascontiguousarray(np.rot90(img, info.rotation // 90)) if info.rotation else img


def read_frame_at(info: VideoInfo, index: int, fps: float | None = None) -> np.ndarray:
    """One frame by output index (for tests and contact sheets; decodes up to it)."""
    for i, frame in enumerate(iter_frames(info, fps=fps)):
        if i == index:
            return frame.copy()
    raise PrepError(info.path, f"frame {index} is past the end of the video")


def is_video_path(path: str | Path) -> bool:
    from .probe import VIDEO_EXTENSIONS

    return Path(path).suffix.lower() in VIDEO_EXTENSIONS
