"""Pengi (Deshmukh et al., 2023): audio + text prompt -> text, faithful to the released checkpoints.

``alm-bench run --model pengi`` loads the released ``base`` checkpoint (downloaded once from Zenodo);
``--model-args checkpoint=PATH_OR_URL,config=base|base_no_text_enc`` picks another.  ``pengi-tiny`` is
the same code with the small configuration alm-bench trains (``training``) and ships (``tiny``).  Usage and every
model argument: ``plugins/pengi/README.md``.  Modules: ``config`` (all sizes, named configurations),
``audio_encoder`` (front end + HTS-AT), ``mapper``, ``network`` (the ``nn.Module``), ``decoding``
(KV-cached beam search and shared-prefix scoring, plus the straightforward versions they are tested
against), ``checkpoint``, ``text`` (tokenisation, text encoders), ``model`` (the alm-bench model),
``training`` (Pengi's recipe on the synthetic suite), ``tiny`` (the shipped ``pengi-tiny``).

Preprocessing follows the reference (44.1 kHz; a clip of 7 s or less is tiled and cut to exactly
308,700 samples), with two deliberate differences:

- **Deterministic crop.**  The reference takes a *random* 7 s window of a longer clip, so two runs
  differ.  Here a longer clip is cut to its **first 7 s** (``crop=start``, the default: the runner
  already cuts every clip to the model's ``max_seconds`` from the start, so nothing beyond 7 s is
  decoded or cached) or to its **centre 7 s** (``crop=center``: the runner then hands over whole clips).
  ESC-50 (5 s) and UrbanSound8K (4 s) clips are tiled, not cropped, so neither choice touches them.
- **Channels are averaged, not concatenated.**  The reference flattens a multi-channel file
  (``reshape(-1)`` of torchaudio's [channels, samples]): a stereo clip becomes a signal twice as long
  that jumps from the end of the left channel back to the start of the right, so a 7 s window holds
  a seam and a repeat, and a short stereo clip is tiled differently from the same clip in mono.  That
  is an accident of the loader, not a modelling choice, and it makes results depend on how a file
  stores its channels.  Averaging gives a stereo file the same input as its mono mix, and it is what
  the alm-bench runner does for every model (it decodes, mixes to mono and caches before calling us).
  ``channels=concat`` keeps the reference's flattening for waveforms given to the model as 2-D
  [channels, samples] arrays outside the runner; through the runner clips are already mono, so it
  changes nothing there (raw channels would need a runner option).

Other choices, where the reference is silent or loose:

- ``generate`` returns the best beam's text, stripped (the reference decodes the stop token, a
  space, into its texts, and returns its scores unsorted while the texts are sorted).
- ``score`` is the sum of the log-probabilities of a candidate's GPT-2 tokens followed by the stop
  token, i.e. of exactly what beam search would emit for that text; without the stop token a label
  would also be rewarded for being the start of a longer caption.
- ``embed`` is the audio encoder's output: by default the 1024-d projection (``embedding=projection``:
  what Pengi's ``audio_encoder`` module returns and the mapper takes, which we read as the paper's
  a_phi, the encoder its linear probes sit on), or HTS-AT's 768-d latent (``embedding=latent``).
- The CLIP prompt embedding enters the text mapper un-normalised, as in the released inference
  wrapper (training normalised it): ``normalize_prompt=true`` follows training instead.
"""

from alm_bench import hookimpl

from .config import CONFIGS, PengiConfig, register_config
from .model import PengiModel, build_network, fit_to_clip
from .tiny import PengiTinyModel

__all__ = ["CONFIGS", "PengiConfig", "PengiModel", "PengiTinyModel", "build_network", "fit_to_clip", "register_config"]


@hookimpl
def alm_bench_models():
    return [PengiModel, PengiTinyModel]
