"""A tiny, randomly initialised LTX-Video condition pipeline saved as a diffusers directory.

Built entirely in code, with no hub download (research/models.md §2.2-2.3). The VAE has LTX's
real 32x spatial and 8x temporal compression, so frame sizes must divide by 32 and frame counts
be 8k+1 exactly as in production. The transformer follows diffusers' own
`test_ltx_condition.py`. The text side is a small T5 encoder from a config in code, with a
Unigram tokenizer made with the `tokenizers` library. The engine loads the directory through its
real `from_pretrained` path. The Wan builder lives in `tiny_wan.py`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from diffusers import (
    AutoencoderKLLTXVideo,
    FlowMatchEulerDiscreteScheduler,
    LTXConditionPipeline,
    LTXVideoTransformer3DModel,
)
from diffusers.models.autoencoders.autoencoder_kl_ltx import LTXVideoUpsampler3d
from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, processors
from transformers import PreTrainedTokenizerFast, T5Config, T5EncoderModel

TEXT_DIM = 32
LATENT_CHANNELS = 8
WORDS = (
    "a the cat dog dance monkey red blue video style of in on street night rain "
    "watercolor painting anime film noir black and white"
)


def make_tokenizer(model_max_length: int = 128) -> PreTrainedTokenizerFast:
    """A T5-style Unigram tokenizer over a few words; unknown words map to <unk>."""
    words = ["<pad>", "</s>", "<unk>"] + ["▁" + word for word in WORDS.split()]
    vocab = [(word, 0.0 if index < 3 else -float(index)) for index, word in enumerate(words)]
    tokenizer = Tokenizer(models.Unigram(vocab, unk_id=2))
    tokenizer.normalizer = normalizers.Lowercase()
    tokenizer.pre_tokenizer = pre_tokenizers.Metaspace(replacement="▁", prepend_scheme="always")
    tokenizer.decoder = decoders.Metaspace(replacement="▁", prepend_scheme="always")
    # T5 appends EOS to every sequence.
    tokenizer.post_processor = processors.TemplateProcessing(
        single="$A </s>", pair="$A </s> $B </s>", special_tokens=[("</s>", 1)]
    )
    return PreTrainedTokenizerFast(
        tokenizer_object=tokenizer,
        pad_token="<pad>",
        eos_token="</s>",
        unk_token="<unk>",
        model_max_length=model_max_length,
        padding_side="right",
    )


#: the tiny text encoder's config, shared by the LTX (T5) and Wan (UMT5) builders
TEXT_ENCODER_CONFIG: dict[str, Any] = {
    # Must exceed the largest token id the tokenizer yields.
    "vocab_size": len(WORDS.split()) + 3,
    "d_model": TEXT_DIM,
    "d_kv": 8,
    "d_ff": 37,
    "num_layers": 2,
    "num_heads": 4,
    "relative_attention_num_buckets": 8,
    "dropout_rate": 0.0,
    "is_encoder_decoder": False,
    "use_cache": False,
}


def _text_encoder() -> T5EncoderModel:
    return T5EncoderModel(T5Config(**TEXT_ENCODER_CONFIG)).eval()


def _vae(**overrides: Any) -> AutoencoderKLLTXVideo:
    """Three spatio-temporal downsamplings of 2 after a 4x4 patchify: 32x spatial, 8x temporal."""
    config: dict[str, Any] = dict(
        in_channels=3,
        out_channels=3,
        latent_channels=LATENT_CHANNELS,
        block_out_channels=(8, 8, 8, 8),
        decoder_block_out_channels=(8, 8, 8, 8),
        layers_per_block=(1, 1, 1, 1, 1),
        decoder_layers_per_block=(1, 1, 1, 1, 1),
        spatio_temporal_scaling=(True, True, True, False),
        decoder_spatio_temporal_scaling=(True, True, True, False),
        decoder_inject_noise=(False,) * 5,
        upsample_residual=(False,) * 4,
        upsample_factor=(1,) * 4,
        timestep_conditioning=False,
        patch_size=4,
        patch_size_t=1,
        encoder_causal=True,
        decoder_causal=False,
    )
    vae = AutoencoderKLLTXVideo(**(config | overrides))
    # Whole clips at once: the tiny clips are far below the frame-wise tile size anyway.
    vae.use_framewise_encoding = False
    vae.use_framewise_decoding = False
    _smooth_in_time(vae)
    return vae


def _smooth_in_time(vae: AutoencoderKLLTXVideo) -> None:
    """Give the temporal sub-frames of each decoder upsampler the same weights.

    An upsampler's convolution makes channels (c, t, h, w) that are then laid out as t sub-frames;
    with random weights every sub-frame differs and decoded frames flicker like noise. Tied
    weights make frames change smoothly in time, as a trained VAE's do, so tests can tell a
    seam's jump from the ordinary change between frames.
    """
    with torch.no_grad():
        for module in vae.decoder.modules():
            if isinstance(module, LTXVideoUpsampler3d) and module.stride[0] > 1:
                stride_t, stride_h, stride_w = module.stride
                conv = module.conv.conv
                weight = conv.weight.view(-1, stride_t, stride_h * stride_w, *conv.weight.shape[1:])
                weight[:, 1:] = weight[:, :1]
                bias = conv.bias.view(-1, stride_t, stride_h * stride_w)
                bias[:, 1:] = bias[:, :1]


def build_tiny_ltx(
    path: Path,
    seed: int = 0,
    *,
    scheduler: dict[str, Any] | None = None,
    vae: dict[str, Any] | None = None,
) -> Path:
    """Write a tiny random `LTXConditionPipeline` to `path` (created) and return `path`;
    `scheduler` and `vae` override keyword arguments of the flow-matching scheduler (the
    converter's defaults) and of the tiny VAE."""
    torch.manual_seed(seed)
    transformer = LTXVideoTransformer3DModel(
        in_channels=LATENT_CHANNELS,
        out_channels=LATENT_CHANNELS,
        patch_size=1,
        patch_size_t=1,
        num_attention_heads=4,
        attention_head_dim=8,
        cross_attention_dim=32,
        num_layers=1,
        caption_channels=TEXT_DIM,
    )
    pipeline = LTXConditionPipeline(
        transformer=transformer,
        vae=_vae(**(vae or {})),
        scheduler=FlowMatchEulerDiscreteScheduler(**(scheduler or {})),
        text_encoder=_text_encoder(),
        tokenizer=make_tokenizer(),
    )
    path.mkdir(parents=True, exist_ok=True)
    pipeline.save_pretrained(str(path))
    return path
