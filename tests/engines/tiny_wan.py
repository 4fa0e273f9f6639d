"""A tiny, randomly initialised Wan 2.1 video-to-video pipeline saved as a diffusers directory.

Built entirely in code (no hub download): the transformer and VAE sizes follow diffusers' own
`test_wan_video_to_video.py`, the text side is a small UMT5 encoder with a Unigram tokenizer
made with the `tokenizers` library (research/models.md §2.2), and the scheduler is configured
like the published Wan 2.1 one (UniPC, flow prediction, flow sigmas). The result loads through
the real `from_pretrained` path the engine uses, with the real VAE strides (8x spatial, 4x
temporal, so sizes divisible by 16 and 4k+1 frames), in well under a second per call on a CPU.
"""

from __future__ import annotations

from pathlib import Path

import torch
from diffusers import (
    AutoencoderKLWan,
    UniPCMultistepScheduler,
    WanTransformer3DModel,
    WanVideoToVideoPipeline,
)
from transformers import UMT5Config, UMT5EncoderModel

from tests.engines.tiny_pipelines import TEXT_ENCODER_CONFIG, make_tokenizer


def build_tiny_wan(path: Path, seed: int = 0) -> Path:
    """Write a tiny random `WanVideoToVideoPipeline` to `path` (created) and return `path`."""
    torch.manual_seed(seed)
    text_encoder = UMT5EncoderModel(UMT5Config(**TEXT_ENCODER_CONFIG)).eval()
    vae = AutoencoderKLWan(
        base_dim=3,
        z_dim=16,
        dim_mult=[1, 1, 1, 1],
        num_res_blocks=1,
        temperal_downsample=[False, True, True],
    )
    transformer = WanTransformer3DModel(
        patch_size=(1, 2, 2),
        num_attention_heads=2,
        attention_head_dim=12,
        in_channels=16,
        out_channels=16,
        text_dim=TEXT_ENCODER_CONFIG["d_model"],
        freq_dim=256,
        ffn_dim=32,
        num_layers=2,
        cross_attn_norm=True,
        qk_norm="rms_norm_across_heads",
        # RoPE tables cover this many latent positions per axis: 64 allows 1024 px.
        rope_max_seq_len=64,
    )
    # As Wan-AI/Wan2.1-T2V-1.3B-Diffusers' scheduler_config.json has it.
    scheduler = UniPCMultistepScheduler(
        prediction_type="flow_prediction", use_flow_sigmas=True, flow_shift=3.0
    )
    pipeline = WanVideoToVideoPipeline(
        tokenizer=make_tokenizer(model_max_length=512),
        text_encoder=text_encoder,
        transformer=transformer,
        vae=vae,
        scheduler=scheduler,
    )
    path.mkdir(parents=True, exist_ok=True)
    pipeline.save_pretrained(str(path))
    return path
