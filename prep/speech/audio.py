"""Audio for the speech check: 16 kHz mono PCM on the output timeline.

The samples come through the same filter chain as the encoded clips' audio
(:func:`prep.encode.audio_chain`), so sample ``n`` is at ``n / 16000`` s after output frame
``start``: what the check measures is what the clip gets. Any codec, rate and channel layout
ffmpeg reads (AAC, MP3, Opus, PCM; mono to 5.1; 8-48 kHz) is downmixed and resampled here.
"""

from __future__ import annotations

import subprocess
import tempfile

import ffmpeg
import numpy as np

from ..encode import audio_chain
from ..errors import PrepError
from ..ffmpeg import ffmpeg_exe
from ..probe import VideoInfo

RATE = 16000  # Hz: the model's input rate


def read_pcm(info: VideoInfo, fps: float, start: int, count: int, margin: int = 0) -> np.ndarray:
    """``(count + 2 * margin) / fps`` seconds of 16 kHz mono int16 audio: from output frame
    ``start - margin`` to ``start + count + margin``. Time before the clip's start and after
    the audio's end is silence (zeros), so the length is always exact."""
    if not info.has_audio:
        raise PrepError(info.path, "no audio stream")
    first = start - margin
    lead = max(0, -first)  # frames before the clip's start: silence
    per_frame = RATE / fps
    n_total = int(round((count + 2 * margin) * per_frame))
    n_read = n_total - int(round(lead * per_frame))
    a = audio_chain(info, fps, max(0, first))
    out = ffmpeg.output(a, "pipe:", format="s16le", acodec="pcm_s16le", ac=1, ar=RATE, t=f"{n_read / RATE:.6f}")
    args = out.global_args("-nostdin", "-hide_banner", "-loglevel", "error").compile(cmd=ffmpeg_exe())
    with tempfile.TemporaryFile() as err:
        proc = subprocess.run(args, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=err)
        if proc.returncode != 0:
            err.seek(0)
            lines = err.read().decode(errors="replace").strip().splitlines()
            raise PrepError(info.path, f"ffmpeg could not read the audio ({lines[0] if lines else f'exit {proc.returncode}'})")
    pcm = np.frombuffer(proc.stdout, np.int16)
    pcm = np.concatenate([np.zeros(int(round(lead * per_frame)), np.int16), pcm[:n_read]])
    if len(pcm) < n_total:  # audio shorter than the video: silence after its end
        pcm = np.concatenate([pcm, np.zeros(n_total - len(pcm), np.int16)])
    return pcm
