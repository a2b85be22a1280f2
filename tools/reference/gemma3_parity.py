"""Reference fixtures proving a Rust Gemma 3 implementation matches Hugging Face transformers.

Usage (from the repository root):

    $HOME/.cache/ehrqa/venv-reference/bin/python tools/reference/gemma3_parity.py --out fixtures/gemma3

The venv is a plain `python3 -m venv` with `pip install torch transformers safetensors numpy` from PyPI
(CPU only). Nothing is downloaded from any model hub: every model is built from an explicit config below
and filled with seeded random weights.

For each case a folder `<out>/<case>/` is written with:

* `config.json`         exactly what `model.config.save_pretrained` (via `model.save_pretrained`) writes
                        with the installed transformers version (new-style `rope_parameters`/`layer_types`).
* `config_legacy.json`  the same model expressed in the older Hub format (`rope_theta`, `rope_local_base_freq`,
                        `rope_scaling`, `sliding_window_pattern`), as found in google/gemma-3-* `config.json`
                        files; the script checks that transformers loads it into the identical model.
* `model.safetensors`   `model.save_pretrained(..., safe_serialization=True)`, key names untouched.
* `reference.safetensors`
    - `input_ids`      int64   [1, T]    random ids in [FIRST_ID, LAST_ID) (no pad/bos/eos/image tokens)
    - `logits_prefill` float32 [1, T, V] one forward pass over the whole prompt
    - `decode_ids`     int64   [1, D]    D further random ids
    - `logits_decode`  float32 [1, D, V] prompt fed with use_cache=True, then each decode id one at a
                                         time with the returned cache; last-position logits stacked.
* `reference.json`      versions, checkpoint key layout (names/shapes), T, D, max |logit|, self-checks.

Everything runs in float32 on CPU with the eager attention implementation; seeds are fixed so that
re-running produces the same bytes.  After writing, each folder is reloaded with `from_pretrained` (both the
saved config and the legacy config) and the logits must reproduce to 1e-6.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import shutil
import sys
import tempfile
from pathlib import Path

# Never touch a model hub: everything is built from explicit configs.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")

import numpy as np
import torch
import torch.nn as nn
import safetensors
import transformers
from safetensors import safe_open
from safetensors.torch import save_file
from transformers import (
    Gemma3Config,
    Gemma3ForCausalLM,
    Gemma3ForConditionalGeneration,
    Gemma3TextConfig,
    SiglipVisionConfig,
)

SEED = 20250301
D = 4  # number of incremental decode steps
FIRST_ID = 3  # 0 = pad, 1 = eos, 2 = bos
LAST_ID = 250  # exclusive; ids >= 250 are reserved for image tokens in the multimodal case
TOL = 1e-6

# Multimodal special tokens, all inside vocab_size = 256.
BOI_TOKEN_INDEX = 253
EOI_TOKEN_INDEX = 254
IMAGE_TOKEN_INDEX = 255

LAYER_TYPES_5_1 = ["sliding_attention"] * 5 + ["full_attention"]


def text_kwargs(rope_scaling: dict | None, sliding_window: int) -> dict:
    """Gemma3TextConfig kwargs in the *legacy* (Hub) spelling; transformers converts them itself."""
    kw = dict(
        vocab_size=256,
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=6,
        num_attention_heads=4,
        num_key_value_heads=2,
        head_dim=16,
        query_pre_attn_scalar=16,
        sliding_window=sliding_window,
        layer_types=list(LAYER_TYPES_5_1),
        rope_theta=1_000_000.0,
        rope_local_base_freq=10_000.0,
        final_logit_softcapping=None,
        attn_logit_softcapping=None,
        max_position_embeddings=512,
        rms_norm_eps=1e-6,
        hidden_activation="gelu_pytorch_tanh",
        tie_word_embeddings=True,
        attention_bias=False,
        pad_token_id=0,
        eos_token_id=1,
        bos_token_id=2,
    )
    if rope_scaling is not None:
        kw["rope_scaling"] = dict(rope_scaling)
    return kw


def legacy_text_dict(kw: dict) -> dict:
    """The same text config in the pre-`rope_parameters` Hub format (google/gemma-3-*/config.json style)."""
    d = {k: v for k, v in kw.items() if k != "layer_types"}
    d["model_type"] = "gemma3_text"
    d["sliding_window_pattern"] = 6
    d["rope_scaling"] = kw.get("rope_scaling")
    return d


VISION_KWARGS = dict(
    hidden_size=32,
    intermediate_size=64,
    num_hidden_layers=2,
    num_attention_heads=2,
    num_channels=3,
    image_size=28,
    patch_size=7,
    layer_norm_eps=1e-6,
    hidden_act="gelu_pytorch_tanh",
    vision_use_head=False,  # as in the real gemma-3 checkpoints
)

CASES = {
    "text_local_global": dict(
        kind="causal_lm",
        T=24,
        text=text_kwargs({"rope_type": "linear", "factor": 8.0}, sliding_window=8),
    ),
    "text_no_scaling": dict(
        kind="causal_lm",
        T=12,
        text=text_kwargs(None, sliding_window=16),
    ),
    "multimodal_text": dict(
        kind="conditional_generation",
        T=24,
        text=text_kwargs({"rope_type": "linear", "factor": 8.0}, sliding_window=8),
    ),
}


def build_config(case: dict, attn: str = "eager"):
    if case["kind"] == "causal_lm":
        cfg = Gemma3TextConfig(**case["text"])
    else:
        cfg = Gemma3Config(
            text_config=Gemma3TextConfig(**case["text"]),
            vision_config=SiglipVisionConfig(**VISION_KWARGS),
            mm_tokens_per_image=4,
            boi_token_index=BOI_TOKEN_INDEX,
            eoi_token_index=EOI_TOKEN_INDEX,
            image_token_index=IMAGE_TOKEN_INDEX,
            tie_word_embeddings=True,
        )
    cfg._attn_implementation = attn
    return cfg


def legacy_config_dict(case: dict) -> dict:
    text = legacy_text_dict(case["text"])
    if case["kind"] == "causal_lm":
        text["architectures"] = ["Gemma3ForCausalLM"]
        return text
    return {
        "architectures": ["Gemma3ForConditionalGeneration"],
        "model_type": "gemma3",
        "text_config": text,
        "vision_config": dict(VISION_KWARGS, model_type="siglip_vision_model"),
        "mm_tokens_per_image": 4,
        "boi_token_index": BOI_TOKEN_INDEX,
        "eoi_token_index": EOI_TOKEN_INDEX,
        "image_token_index": IMAGE_TOKEN_INDEX,
        "tie_word_embeddings": True,
    }


def randomize_(model: nn.Module, seed: int) -> None:
    """Overwrite every parameter with seeded noise so that each code path matters.

    transformers' own init leaves Gemma RMSNorm weights (and the multimodal projector) at zero, which would hide
    a missing `1 + w`; embeddings at std 0.02 would make the layers irrelevant.  Scales here keep every residual
    branch at O(1) magnitude.
    """
    g = torch.Generator().manual_seed(seed)

    def normal_(t: torch.Tensor, std: float, mean: float = 0.0) -> None:
        with torch.no_grad():
            t.copy_(torch.randn(t.shape, generator=g, dtype=torch.float32) * std + mean)

    seen: set[int] = set()
    for _name, module in model.named_modules():
        own = list(module.named_parameters(recurse=False))
        if not own:
            continue
        cls = type(module).__name__
        for pname, p in own:
            if id(p) in seen:  # tied parameter, already filled
                continue
            seen.add(id(p))
            if "RMSNorm" in cls:
                normal_(p, 0.2)  # effective scale (1 + w)
            elif isinstance(module, nn.LayerNorm):
                normal_(p, 0.1, 1.0 if pname == "weight" else 0.0)
            elif isinstance(module, nn.Embedding):
                # text embeddings get multiplied by sqrt(hidden); keep the scaled RMS ~ 1
                normal_(p, 1.0 / math.sqrt(p.shape[-1]) if "Scaled" in cls else 0.1)
            elif isinstance(module, (nn.Linear, nn.Conv2d)):
                if pname == "weight":
                    fan_in = p[0].numel()
                    normal_(p, 1.0 / math.sqrt(fan_in))
                else:
                    normal_(p, 0.1)
            elif pname == "mm_input_projection_weight":
                normal_(p, 1.0 / math.sqrt(p.shape[0]))
            else:
                normal_(p, 0.1)


def model_class(case: dict):
    return Gemma3ForCausalLM if case["kind"] == "causal_lm" else Gemma3ForConditionalGeneration


def out_cache(out):
    c = getattr(out, "cache", None)
    if c is None:
        c = getattr(out, "past_key_values", None)
    return c


def forward(model, ids, cache=None, use_cache=False):
    kwargs = dict(input_ids=ids, use_cache=use_cache)
    if cache is not None:
        try:
            return model(**kwargs, cache=cache)
        except TypeError:
            return model(**kwargs, past_key_values=cache)
    return model(**kwargs)


@torch.no_grad()
def compute_logits(model, input_ids: torch.Tensor, decode_ids: torch.Tensor):
    prefill = forward(model, input_ids).logits.float()

    out = forward(model, input_ids, use_cache=True)
    cache = out_cache(out)
    assert cache is not None, "model returned no cache"
    steps = []
    for k in range(decode_ids.shape[1]):
        out = forward(model, decode_ids[:, k : k + 1], cache=cache, use_cache=True)
        cache = out_cache(out)
        steps.append(out.logits[:, -1, :].float())
    decode = torch.stack(steps, dim=1)
    return prefill.contiguous(), decode.contiguous()


@torch.no_grad()
def decode_vs_recompute(model, input_ids, decode_ids) -> float:
    """Max |diff| between cached decode logits and full-recompute logits at the same positions."""
    _, dec = compute_logits(model, input_ids, decode_ids)
    full = forward(model, torch.cat([input_ids, decode_ids], dim=1)).logits.float()
    return float((full[:, input_ids.shape[1] :, :] - dec).abs().max())


def key_layout(keys: list[str]) -> str:
    if any(k.startswith("model.language_model.") for k in keys):
        return "model.language_model.*"
    if any(k.startswith("language_model.model.") for k in keys):
        return "language_model.model.*"
    if any(k.startswith("model.layers.") for k in keys):
        return "model.*"
    return "unknown"


def run_case(name: str, case: dict, out_root: Path, case_seed: int) -> dict:
    folder = out_root / name
    if folder.exists():
        shutil.rmtree(folder)
    folder.mkdir(parents=True)

    torch.manual_seed(case_seed)
    cfg = build_config(case)
    model = model_class(case)(cfg).eval()
    randomize_(model, case_seed + 1)

    lm_head = model.lm_head.weight
    embed = model.get_input_embeddings().weight
    tied = lm_head.data_ptr() == embed.data_ptr()
    assert tied, "tie_word_embeddings=True but lm_head is not tied"

    g = torch.Generator().manual_seed(case_seed + 2)
    T = case["T"]
    input_ids = torch.randint(FIRST_ID, LAST_ID, (1, T), generator=g, dtype=torch.int64)
    decode_ids = torch.randint(FIRST_ID, LAST_ID, (1, D), generator=g, dtype=torch.int64)

    logits_prefill, logits_decode = compute_logits(model, input_ids, decode_ids)
    recompute_diff = decode_vs_recompute(model, input_ids, decode_ids)

    model.save_pretrained(str(folder), safe_serialization=True)
    # Keep exactly what save_pretrained wrote; drop side files other than config/model.
    for extra in folder.iterdir():
        if extra.name not in ("config.json", "model.safetensors"):
            extra.unlink()

    save_file(
        {
            "input_ids": input_ids.contiguous(),
            "logits_prefill": logits_prefill,
            "decode_ids": decode_ids.contiguous(),
            "logits_decode": logits_decode,
        },
        str(folder / "reference.safetensors"),
        metadata={"format": "pt"},  # one key only: multi-key metadata order is not stable
    )
    legacy = legacy_config_dict(case)
    (folder / "config_legacy.json").write_text(json.dumps(legacy, indent=2, sort_keys=True) + "\n")

    with safe_open(str(folder / "model.safetensors"), framework="pt") as f:
        keys = sorted(f.keys())
        shapes = {k: list(f.get_slice(k).get_shape()) for k in keys}
        dtypes = {k: str(f.get_slice(k).get_dtype()) for k in keys}

    # ---- self checks: reload from disk (saved config and legacy config), eager and sdpa ----
    checks = {"decode_vs_full_recompute_max_abs_diff": recompute_diff}
    cls = model_class(case)
    for label, cfg_path in (("saved_config", None), ("legacy_config", folder / "config_legacy.json")):
        for attn in ("eager", "sdpa"):
            if cfg_path is None:
                m = cls.from_pretrained(str(folder), attn_implementation=attn, dtype=torch.float32).eval()
            else:
                with tempfile.TemporaryDirectory() as tmp:
                    shutil.copy(cfg_path, Path(tmp) / "config.json")
                    os.symlink((folder / "model.safetensors").resolve(), Path(tmp) / "model.safetensors")
                    m = cls.from_pretrained(tmp, attn_implementation=attn, dtype=torch.float32).eval()
            p2, d2 = compute_logits(m, input_ids, decode_ids)
            dp = float((p2 - logits_prefill).abs().max())
            dd = float((d2 - logits_decode).abs().max())
            checks[f"reload_{label}_{attn}_prefill_max_abs_diff"] = dp
            checks[f"reload_{label}_{attn}_decode_max_abs_diff"] = dd
            if attn == "eager":
                assert dp <= TOL and dd <= TOL, f"{name}: reload ({label}) mismatch {dp} {dd}"
            else:
                assert dp <= 1e-5 and dd <= 1e-5, f"{name}: sdpa mismatch {dp} {dd}"
            if label == "legacy_config":
                text_cfg = m.config.get_text_config()
                ref_cfg = model.config.get_text_config()
                assert text_cfg.layer_types == ref_cfg.layer_types, "legacy layer_types differ"
                assert text_cfg.rope_parameters == ref_cfg.rope_parameters, (
                    f"legacy rope_parameters differ: {text_cfg.rope_parameters} vs {ref_cfg.rope_parameters}"
                )
            del m

    text_cfg = model.config.get_text_config()
    info = {
        "case": name,
        "model_class": cls.__name__,
        "versions": {
            "python": platform.python_version(),
            "torch": torch.__version__,
            "transformers": transformers.__version__,
            "safetensors": safetensors.__version__,
            "numpy": np.__version__,
        },
        "seed": case_seed,
        "dtype": "float32",
        "device": "cpu",
        "attn_implementation": "eager",
        "T": T,
        "D": D,
        "vocab_size": text_cfg.vocab_size,
        "input_id_range": [FIRST_ID, LAST_ID],
        "layer_types": list(text_cfg.layer_types),
        "sliding_window": text_cfg.sliding_window,
        "rope_parameters": text_cfg.rope_parameters,
        "key_layout": key_layout(keys),
        "lm_head_in_checkpoint": any(k.endswith("lm_head.weight") for k in keys),
        "tensors": {k: {"shape": shapes[k], "dtype": dtypes[k]} for k in keys},
        "max_abs_logit_prefill": float(logits_prefill.abs().max()),
        "max_abs_logit_decode": float(logits_decode.abs().max()),
        "checks": checks,
        "tolerance": TOL,
    }
    if case["kind"] != "causal_lm":
        info["special_tokens"] = {
            "boi_token_index": BOI_TOKEN_INDEX,
            "eoi_token_index": EOI_TOKEN_INDEX,
            "image_token_index": IMAGE_TOKEN_INDEX,
            "mm_tokens_per_image": 4,
        }
    (folder / "reference.json").write_text(json.dumps(info, indent=2, sort_keys=True) + "\n")
    return info


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", required=True, type=Path, help="output folder, e.g. fixtures/gemma3")
    ap.add_argument("--case", action="append", choices=sorted(CASES), help="only these cases (repeatable)")
    args = ap.parse_args(argv)

    torch.set_num_threads(1)  # deterministic reductions
    torch.use_deterministic_algorithms(True)
    transformers.logging.set_verbosity_error()
    transformers.logging.disable_progress_bar()

    args.out.mkdir(parents=True, exist_ok=True)
    for i, name in enumerate(CASES):
        if args.case and name not in args.case:
            continue
        info = run_case(name, CASES[name], args.out, SEED + 1000 * i)
        print(
            f"{name}: layout={info['key_layout']} T={info['T']} D={info['D']} "
            f"max|logit|={info['max_abs_logit_prefill']:.4f} "
            f"recompute_diff={info['checks']['decode_vs_full_recompute_max_abs_diff']:.2e}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
