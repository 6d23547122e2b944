"""Probe a video file: geometry, rotation, pixel aspect, frame rate (and whether it varies), audio.

The ffmpeg binary that ``imageio-ffmpeg`` ships has no ffprobe, so probing reads the container
with PyAV (libav's own demuxer, structured values instead of parsed log text). Packets are
demuxed without decoding to measure the real frame timing, so variable frame rate is found
from timestamps, not guessed from headers; only the first frame is decoded (to read the
display matrix and to prove the stream decodes).
"""

from __future__ import annotations

import heapq
import math
from dataclasses import asdict, dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any

from .errors import PrepError

VIDEO_EXTENSIONS = {".mp4", ".mov", ".mkv", ".avi", ".webm", ".m4v", ".mpg", ".mpeg", ".flv", ".wmv", ".3gp", ".ts", ".mts", ".m2ts", ".vob"}


@dataclass(frozen=True)
class VideoInfo:
    """Facts about one video file.

    ``width``/``height`` are the stored frame size; ``display_width``/``display_height`` the
    upright size in square pixels (after the rotation tag and the sample aspect ratio), which
    is the coordinate system every later stage works in.
    """

    path: str
    width: int
    height: int
    rotation: int  # degrees from the display matrix, as libav reports it (0, 90, 180, 270)
    sar: Fraction  # sample (pixel) aspect ratio, width/height of one stored pixel
    display_width: int
    display_height: int
    fps: float  # average frame rate measured from timestamps
    nominal_fps: float  # rate the header announces
    vfr: bool
    frame_count: int
    start_time: float  # seconds, video stream, from the container's start (as ffmpeg counts)
    duration: float  # seconds, video stream (first frame start to last frame end)
    codec: str
    has_audio: bool
    audio_codec: str | None = None
    audio_rate: int | None = None
    audio_channels: int | None = None
    audio_start: float | None = None  # seconds from the container's start, as start_time
    audio_duration: float | None = None
    # where the container's clock stood at its start: 0 in MP4 and MOV, anything in MPEG-TS
    # (.ts, .mts, .m2ts) and MPEG-PS (.mpg), whose clock runs on from the broadcast or camera.
    # ffmpeg counts every timestamp (and -ss) from it; PyAV's packets carry the raw clock.
    container_start: float = 0.0
    container: str = ""  # the container format as libavformat names it ("mov,mp4,m4a,3gp,3g2,mj2", "mpegts", ...)

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["sar"] = f"{self.sar.numerator}:{self.sar.denominator}"
        return d


def display_size(width: int, height: int, sar: Fraction, rotation: int) -> tuple[int, int]:
    """Upright square-pixel size of a ``width`` x ``height`` frame stored with pixel aspect ``sar``."""
    w, h = max(1, int(round(width * sar))), height
    if rotation % 180 == 90:
        w, h = h, w
    return w, h


def probe_video(path: str | Path) -> VideoInfo:
    """Probe ``path``; raise :class:`PrepError` with a one-line reason when it is not a usable video."""
    import av

    path = Path(path)
    if not path.exists():
        raise PrepError(path, "file not found")
    if path.is_dir():
        raise PrepError(path, "is a folder, not a video file")
    if path.stat().st_size == 0:
        raise PrepError(path, "empty file (0 bytes)")
    try:
        container = av.open(str(path), metadata_errors="ignore")
    except av.error.FFmpegError as exc:
        raise PrepError(path, f"not a readable video ({_av_reason(exc)})") from None
    try:
        with container:
            return _probe_open(path, container)
    except av.error.FFmpegError as exc:
        raise PrepError(path, f"video cannot be read ({_av_reason(exc)})") from None


def _av_reason(exc: Exception) -> str:
    msg = getattr(exc, "strerror", None) or str(exc)
    return str(msg).split(":")[-1].strip() or type(exc).__name__


def _probe_open(path: Path, container: Any) -> VideoInfo:
    if not container.streams.video:
        kind = "audio-only file" if container.streams.audio else "no video stream"
        raise PrepError(path, f"{kind}: nothing to crop")
    vs = container.streams.video[0]
    cc = vs.codec_context
    width, height = int(cc.width), int(cc.height)
    if width <= 0 or height <= 0:
        raise PrepError(path, "video stream has no frame size")
    sar = Fraction(vs.sample_aspect_ratio) if vs.sample_aspect_ratio else Fraction(1)
    if sar <= 0:
        sar = Fraction(1)

    audio = container.streams.audio[0] if container.streams.audio else None
    tb = vs.time_base

    # Demux every video packet (no decoding): timestamps give true frame timing and count.
    # Only the frames a decoder outputs count: not the packets an edit list marks as discarded
    # (a stream copy cut between key frames keeps the GOP's start for decoding and hides it),
    # nor those before the first frame that decodes (an MPEG-TS recording cut mid-GOP).
    rotation, first_shown = _first_frame(path, vs)
    timing = _FrameTiming()
    streams = [vs] + ([audio] if audio is not None else [])
    audio_end = None
    audio_first = None
    stored = 0  # video packets in the file, shown or not: what its header counts
    try:
        for packet in container.demux(streams):
            if packet.pts is None:
                continue
            if packet.stream.type == "video":
                stored += 1
                if packet.is_discard or packet.pts < first_shown:
                    continue
                timing.add(float(packet.pts * tb), float((packet.duration or 0) * tb))
            elif not packet.is_discard:
                t = float(packet.pts * packet.time_base)
                audio_first = t if audio_first is None else min(audio_first, t)
                end = t + float((packet.duration or 0) * packet.time_base)
                audio_end = end if audio_end is None else max(audio_end, end)
    except Exception as exc:  # a broken packet mid-file: the file is truncated or corrupt
        raise PrepError(path, f"video is damaged after {timing.count} frames ({_av_reason(exc)})") from None
    timing.finish()
    if timing.count == 0:
        raise PrepError(path, "video stream has no frames")
    declared = int(vs.frames or 0)
    if declared and stored < 0.95 * declared:
        raise PrepError(path, f"video is truncated: {stored} of {declared} frames present")

    nominal = float(vs.base_rate or vs.average_rate or vs.guessed_rate or 0) or timing.mean_fps()
    fps = timing.mean_fps() or nominal
    dw, dh = display_size(width, height, sar, rotation)
    zero = container.start_time / 1_000_000 if container.start_time is not None else 0.0  # AV_TIME_BASE units
    return VideoInfo(
        path=str(path),
        width=width,
        height=height,
        rotation=rotation,
        sar=sar,
        display_width=dw,
        display_height=dh,
        fps=round(fps, 4),
        nominal_fps=round(nominal, 4),
        vfr=timing.is_variable(),
        frame_count=timing.count,
        start_time=round(timing.first - zero, 6),
        duration=round(timing.duration(), 6),
        codec=cc.name,
        has_audio=audio is not None and audio_end is not None,
        audio_codec=audio.codec_context.name if audio is not None else None,
        audio_rate=int(audio.codec_context.sample_rate) if audio is not None else None,
        audio_channels=int(audio.codec_context.channels) if audio is not None else None,
        # packets before 0 are the AAC encoder's priming, which the decoder drops
        audio_start=None if audio_first is None else round(max(audio_first - zero, 0.0), 6),
        audio_duration=None if audio_end is None or audio_first is None else round(audio_end - zero - max(audio_first - zero, 0.0), 6),
        container_start=round(zero, 6),
        container=container.format.name,
    )


def frame_times(info: VideoInfo) -> Any:
    """Each decoded frame's time in seconds from the first frame, in presentation order, read
    from the packets (no decoding): the true times of a variable-frame-rate video, which
    ``index / fps`` only approximates. One float a frame, as a per-frame report holds anyway."""
    import av
    import numpy as np

    with av.open(str(info.path)) as container:
        vs = container.streams.video[0]
        first = round((info.container_start + info.start_time) / float(vs.time_base)) - 1  # the probe's first shown frame, less a tick of rounding
        pts = np.sort(np.array([p.pts for p in container.demux(vs) if p.pts is not None and not p.is_discard and p.pts >= first], np.float64))
        return pts * float(vs.time_base) - info.container_start - info.start_time


def _first_frame(path: Path, vs: Any) -> tuple[int, int]:
    """Decode the first frame (proves the stream decodes): its display rotation and its pts
    (in the stream's time base), where the frames a decoder shows begin."""
    import av

    try:
        with av.open(str(path)) as c:
            stream = c.streams.video[0]
            for frame in c.decode(stream):
                rot = getattr(frame, "rotation", None)
                if rot is None:  # old PyAV: the legacy 'rotate' tag
                    rot = -int(float(vs.metadata.get("rotate", 0)))
                shown = frame.pts if frame.pts is not None else -(1 << 62)
                return int(round(float(rot))) % 360, shown
    except av.error.FFmpegError as exc:
        raise PrepError(path, f"video cannot be decoded ({_av_reason(exc)})") from None
    raise PrepError(path, "no video frame could be decoded")


class _FrameTiming:
    """Streaming frame-timing statistics from packet timestamps (decode order).

    A small reorder heap puts B-frame packets back in presentation order, so memory stays
    constant however long the video is.
    """

    REORDER = 32

    def __init__(self) -> None:
        self._heap: list[float] = []
        self.count = 0
        self.first = math.inf
        self._last = None
        self._last_dur = 0.0
        self._deltas_n = 0
        self._deltas_sum = 0.0
        self._deltas_sq = 0.0
        self._irregular = 0
        self._ref_delta = None

    def add(self, pts: float, duration: float) -> None:
        self.count += 1
        self.first = min(self.first, pts)
        self._last_dur = duration or self._last_dur
        heapq.heappush(self._heap, pts)
        if len(self._heap) > self.REORDER:
            self._emit(heapq.heappop(self._heap))

    def finish(self) -> None:
        while self._heap:
            self._emit(heapq.heappop(self._heap))

    def _emit(self, pts: float) -> None:
        if self._last is not None:
            d = pts - self._last
            self._deltas_n += 1
            self._deltas_sum += d
            if self._ref_delta is None:
                self._ref_delta = d
            # a frame interval more than 20% off the first one is irregular timing
            elif self._ref_delta > 0 and abs(d - self._ref_delta) > 0.2 * self._ref_delta:
                self._irregular += 1
        self._last = pts

    def mean_interval(self) -> float:
        return self._deltas_sum / self._deltas_n if self._deltas_n else 0.0

    def mean_fps(self) -> float:
        m = self.mean_interval()
        return 1.0 / m if m > 0 else 0.0

    def duration(self) -> float:
        if self._last is None:
            return 0.0
        tail = self._last_dur or self.mean_interval()
        return self._last - self.first + tail

    def is_variable(self) -> bool:
        return self._deltas_n > 0 and self._irregular > max(1, 0.01 * self._deltas_n)
