#!/usr/bin/env python3
"""Generate ``astronaut_vertical.mp4``, a small test clip for ``prep crop``.

What it makes
-------------
A 6-second, 30 fps (constant), 720x1280 vertical ("phone-style") H.264
yuv420p video with square pixels and a mono 44.1 kHz AAC audio track of the
same length.

Each frame is scikit-image's bundled astronaut photo
(``skimage.data.astronaut()``, 512x512 RGB, available offline), upscaled ~2.3x
so the face box is roughly 240-270 px tall, composited over a blurred,
enlarged and darkened copy of the same photo (so there are no black bars and
the background is not uniform).  The face is deliberately *off-centre*
(its centre starts at about x = 0.35*720, y = 0.35*1280) and *drifts*
smoothly during the clip: a slow sub-pixel pan of about +/-80 px
horizontally and +/-50 px vertically plus a +/-5 % zoom, all driven by smooth
sinusoids (no jitter).  Only one face is in frame.

The audio is a deterministic, speech-like signal synthesised with numpy: a
harmonic "voice" whose pitch sweeps slowly between ~110 and ~220 Hz, shaped
by a few formant-like resonances and amplitude-modulated at a syllable rate
of ~4 Hz with short pauses between "phrases".

Why
---
``prep crop`` has to find a face that is not in the middle of the frame,
follow it while it moves, produce a face-centred square output and carry the
audio through.  This clip exercises all of that while staying tiny
(well under 1.5 MB) and being fully reproducible from this script.

How
---
Frames are rendered one at a time with ``cv2.warpAffine`` and streamed as raw
RGB to the ``ffmpeg`` binary shipped in the ``imageio-ffmpeg`` wheel
(``-f rawvideo`` on stdin); the audio goes through a temporary WAV file
written with the stdlib ``wave`` module.  The output is written to a
temporary file next to the target and atomically renamed at the end.

Usage::

    python sample_data/make_sample.py                 # -> sample_data/astronaut_vertical.mp4
    python sample_data/make_sample.py --out /tmp/x.mp4

Requires: numpy, opencv-python(-headless), scikit-image, imageio-ffmpeg.
The script uses no randomness, so the frames and audio samples are identical
on every run.  The encoded file is usually byte-identical too (fixed encoder
settings, fixed thread count, bit-exact flags), though that can change across
ffmpeg/x264 versions.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import wave
from pathlib import Path

import cv2
import imageio_ffmpeg
import numpy as np
from skimage import data as skdata

# ---------------------------------------------------------------- parameters
WIDTH, HEIGHT = 720, 1280
FPS = 30
N_FRAMES = 180  # 6.0 s
SAMPLE_RATE = 44100
DURATION_S = N_FRAMES / FPS

# Face centre in the 512x512 astronaut image (YuNet box centre on the source
# image; its box is about x 179-269, y 66-176, i.e. ~111 px tall).
SRC_FACE_CX, SRC_FACE_CY = 224.0, 121.0
BASE_SCALE = 2.3  # -> face box ~255 px tall on the canvas

# Where the face centre sits at frame 0 (off-centre: upper-left third).
START_CX, START_CY = 0.35 * WIDTH, 0.35 * HEIGHT

# Drift amplitudes.
PAN_X_PX = 80.0
PAN_Y_PX = 50.0
ZOOM_FRAC = 0.05

CRF = 28
DEFAULT_OUT = Path(__file__).resolve().parent / "astronaut_vertical.mp4"


# ------------------------------------------------------------------- motion
def motion(i: int) -> tuple[float, float, float]:
    """Return (dx, dy, zoom) for frame ``i``.

    Smooth sinusoids that are all zero / 1.0 at frame 0, so the first frame
    has the face exactly at (START_CX, START_CY).  The cycle counts differ so
    x, y and zoom don't peak together, and each reaches both extremes
    (x 172..332, y 398..498, zoom 0.95..1.05).  Peak speed is ~2 px/frame.
    """
    u = i / N_FRAMES  # 0 .. <1 over the clip
    dx = PAN_X_PX * np.sin(2.0 * np.pi * 0.75 * u)  # right, back, left
    dy = PAN_Y_PX * np.sin(2.0 * np.pi * 1.25 * u)  # down, up, down
    zoom = 1.0 + ZOOM_FRAC * np.sin(2.0 * np.pi * 0.8 * u)  # in, out
    return float(dx), float(dy), float(zoom)


def face_centre(i: int) -> tuple[float, float]:
    """Intended face centre on the canvas for frame ``i`` (for reference)."""
    dx, dy, _ = motion(i)
    return START_CX + dx, START_CY + dy


def affine_for_frame(i: int) -> np.ndarray:
    """2x3 matrix mapping source-image pixels to canvas pixels for frame i.

    The zoom is about the face centre, so the face centre follows the pan
    exactly and the face only grows/shrinks around it.
    """
    dx, dy, zoom = motion(i)
    k = BASE_SCALE * zoom
    tx = START_CX + dx - k * SRC_FACE_CX
    ty = START_CY + dy - k * SRC_FACE_CY
    return np.array([[k, 0.0, tx], [0.0, k, ty]], dtype=np.float64)


# ---------------------------------------------------------------- rendering
def make_background(src: np.ndarray) -> np.ndarray:
    """Static background: the photo enlarged to cover the canvas, mirrored,
    heavily blurred and darkened, plus a soft vertical gradient."""
    h, w = src.shape[:2]
    s = max(WIDTH / w, HEIGHT / h) * 1.15
    big = cv2.resize(src, (round(w * s), round(h * s)), interpolation=cv2.INTER_LINEAR)
    big = big[:, ::-1]  # mirror so the blurred face doesn't line up with the real one
    y0 = (big.shape[0] - HEIGHT) // 2
    x0 = (big.shape[1] - WIDTH) // 2
    bg = big[y0 : y0 + HEIGHT, x0 : x0 + WIDTH].astype(np.float32)
    bg = cv2.GaussianBlur(bg, (0, 0), sigmaX=40, sigmaY=40)
    grad = np.linspace(0.75, 0.45, HEIGHT, dtype=np.float32)[:, None, None]
    bg = bg * grad + np.array([10, 14, 24], np.float32)  # slight cool tint
    return np.clip(bg, 0, 255)


def make_alpha_source(h: int, w: int, feather: int = 10) -> np.ndarray:
    """Alpha mask for the foreground photo with softly feathered edges
    (defined in source-image pixels, so it scales with the photo)."""
    ramp_y = np.clip(np.minimum(np.arange(h), np.arange(h)[::-1]) / feather, 0, 1)
    ramp_x = np.clip(np.minimum(np.arange(w), np.arange(w)[::-1]) / feather, 0, 1)
    alpha = np.outer(ramp_y, ramp_x).astype(np.float32)
    # smoothstep for a gentler edge
    return alpha * alpha * (3.0 - 2.0 * alpha)


def render_frame(
    i: int, src_f: np.ndarray, alpha_src: np.ndarray, bg: np.ndarray
) -> np.ndarray:
    """Render frame ``i`` as a (HEIGHT, WIDTH, 3) uint8 RGB array."""
    m = affine_for_frame(i)
    fg = cv2.warpAffine(
        src_f, m, (WIDTH, HEIGHT), flags=cv2.INTER_CUBIC,
        borderMode=cv2.BORDER_CONSTANT, borderValue=(0, 0, 0),
    )
    a = cv2.warpAffine(
        alpha_src, m, (WIDTH, HEIGHT), flags=cv2.INTER_LINEAR,
        borderMode=cv2.BORDER_CONSTANT, borderValue=0,
    )[:, :, None]
    out = fg * a + bg * (1.0 - a)
    return np.clip(out + 0.5, 0, 255).astype(np.uint8)


# -------------------------------------------------------------------- audio
def synth_audio() -> np.ndarray:
    """Deterministic speech-like mono signal, int16, DURATION_S long."""
    n = int(round(DURATION_S * SAMPLE_RATE))
    t = np.arange(n, dtype=np.float64) / SAMPLE_RATE

    # Pitch contour: slow sweep 110..220 Hz with a little intonation wobble.
    f0 = 165.0 + 55.0 * np.sin(2 * np.pi * 0.23 * t) + 12.0 * np.sin(2 * np.pi * 1.7 * t)
    phase = 2 * np.pi * np.cumsum(f0) / SAMPLE_RATE

    # Harmonic source with formant-like weighting (peaks near 500/1500/2500 Hz).
    voice = np.zeros(n)
    formants = ((500.0, 120.0), (1500.0, 200.0), (2500.0, 300.0))
    for h in range(1, 16):
        fh = h * f0
        w = sum(np.exp(-0.5 * ((fh - fc) / bw) ** 2) for fc, bw in formants)
        w = 0.15 / h + w  # spectral tilt + formants
        voice += w * np.sin(h * phase)

    # Syllables at ~4 Hz (raised-cosine bursts) grouped into phrases with
    # ~0.35 s pauses.
    syll = 0.5 - 0.5 * np.cos(2 * np.pi * 4.1 * t)
    syll = syll**1.5
    phrase_len, pause = 1.6, 0.35
    pos = np.mod(t, phrase_len + pause)
    phrase = np.clip(np.minimum(pos / 0.05, (phrase_len - pos) / 0.05), 0, 1)
    env = syll * phrase

    # Fade in/out to avoid clicks at the ends.
    fade = int(0.02 * SAMPLE_RATE)
    ramp = np.ones(n)
    ramp[:fade] = np.linspace(0, 1, fade)
    ramp[-fade:] = np.linspace(1, 0, fade)

    sig = voice * env * ramp
    sig *= 0.5 / np.max(np.abs(sig))  # peak at -6 dBFS
    return np.round(sig * 32767).astype(np.int16)


def write_wav(path: Path, samples: np.ndarray) -> None:
    with wave.open(str(path), "wb") as wf:
        wf.setnchannels(1)
        wf.setsampwidth(2)
        wf.setframerate(SAMPLE_RATE)
        wf.writeframes(samples.astype("<i2").tobytes())


# --------------------------------------------------------------------- main
def ffmpeg_cmd(ffmpeg: str, wav: Path, out_tmp: Path) -> list[str]:
    return [
        ffmpeg, "-hide_banner", "-loglevel", "error", "-y",
        # video: raw RGB frames on stdin
        "-f", "rawvideo", "-pix_fmt", "rgb24",
        "-s", f"{WIDTH}x{HEIGHT}", "-framerate", str(FPS), "-i", "pipe:0",
        # audio: temporary WAV
        "-i", str(wav),
        "-map", "0:v:0", "-map", "1:a:0",
        # RGB -> BT.709 limited-range YUV, tagged as such, square pixels
        "-vf", "scale=out_color_matrix=bt709:out_range=tv,"
               "setparams=range=tv:color_primaries=bt709:color_trc=bt709:colorspace=bt709,"
               "setsar=1",
        "-c:v", "libx264", "-preset", "medium", "-crf", str(CRF),
        "-pix_fmt", "yuv420p", "-r", str(FPS), "-fps_mode", "cfr",
        "-threads", "4",
        "-c:a", "aac", "-b:a", "96k", "-ar", str(SAMPLE_RATE), "-ac", "1",
        "-map_metadata", "-1", "-fflags", "+bitexact",
        "-flags:v", "+bitexact", "-flags:a", "+bitexact",
        "-movflags", "+faststart",
        "-f", "mp4", str(out_tmp),
    ]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        description="Generate the vertical astronaut test clip for `prep crop`."
    )
    ap.add_argument(
        "--out", type=Path, default=DEFAULT_OUT,
        help=f"output .mp4 path (default: {DEFAULT_OUT})",
    )
    args = ap.parse_args(argv)
    out: Path = args.out.resolve()
    out.parent.mkdir(parents=True, exist_ok=True)

    src = skdata.astronaut()  # RGB uint8, 512x512
    src_f = src.astype(np.float32)
    alpha_src = make_alpha_source(*src.shape[:2])
    bg = make_background(src)

    ffmpeg = imageio_ffmpeg.get_ffmpeg_exe()
    # Temp file in the destination folder so the final rename is atomic;
    # the name matches the repo's `*.part.*` ignore pattern.
    fd, tmp_name = tempfile.mkstemp(prefix=f".{out.stem}.part.", suffix=".mp4", dir=out.parent)
    os.close(fd)
    out_tmp = Path(tmp_name)
    try:
        with tempfile.TemporaryDirectory() as td:
            wav = Path(td) / "audio.wav"
            write_wav(wav, synth_audio())

            proc = subprocess.Popen(ffmpeg_cmd(ffmpeg, wav, out_tmp), stdin=subprocess.PIPE)
            try:
                for i in range(N_FRAMES):  # stream: one frame in memory at a time
                    proc.stdin.write(render_frame(i, src_f, alpha_src, bg).tobytes())
            except BrokenPipeError:
                pass  # ffmpeg died; its return code is checked below
            finally:
                try:
                    proc.stdin.close()
                except BrokenPipeError:
                    pass
            rc = proc.wait()
            if rc != 0:
                raise RuntimeError(f"ffmpeg failed with exit code {rc}")
        # mkstemp creates 0600; give the result normal umask-based permissions.
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(out_tmp, 0o666 & ~umask)
        os.replace(out_tmp, out)
    except BaseException:
        out_tmp.unlink(missing_ok=True)
        raise

    print(f"wrote {out} ({out.stat().st_size / 1e6:.2f} MB)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
