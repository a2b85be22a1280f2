"""Reference fixtures for the Gemma 3 / MedGemma 1.5 vision path (SigLIP tower, multimodal projector,
image tokens with bidirectional attention inside an image, and the image processor).

Usage (from the repository root; the venv of gemma3_parity.py plus `pip install pillow`):

    $HOME/.cache/ehrqa/venv-reference/bin/python tools/reference/gemma3_vision_parity.py --out fixtures/gemma3

Writes `<out>/multimodal_image/`:

* `config.json`, `model.safetensors`: a tiny random `Gemma3ForConditionalGeneration` (the same configuration
  as the `multimodal_text` case of gemma3_parity.py: SigLIP 28x28 images in 7x7 patches, 16 patches pooled
  2x2 into 4 image tokens; a 6-layer text model with a sliding window of 8, shorter than the prompt).
* `reference.safetensors`:
    - `pixel_values`   float32 [1, 3, 28, 28]  random values in [-1, 1]
    - `vision_hidden`  float32 [1, 16, 32]     the SigLIP tower's output (after post_layernorm)
    - `image_features` float32 [1, 4, 64]      after the projector (pool, RMSNorm, projection)
    - `input_ids`      int64   [1, T]          text, <start_of_image>, 4 image tokens, <end_of_image>, text
    - `token_type_ids` int64   [1, T]          1 on the image tokens
    - `logits`         float32 [1, T, V]
* `images/report.png`, `images/report.jpg`: small rendered "lab report" pictures (RGB PNG, RGBA PNG, JPEG),
  and `processed.safetensors` with what the reference image processor (`Gemma3ImageProcessorPil`: PIL
  bilinear resize, rescale 1/255, normalise with mean 0.5 / std 0.5) makes of each at 28x28 and 64x64,
  plus the decoded RGB pixels (`decoded_*`, uint8) so a JPEG decoder difference is told apart from a
  preprocessing difference.
"""

from __future__ import annotations

import argparse
import io
import json
import sys
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageDraw
from safetensors.torch import save_file

sys.path.insert(0, str(Path(__file__).parent))
import gemma3_parity as base  # noqa: E402
from transformers.image_transforms import convert_to_rgb  # noqa: E402
from transformers.models.gemma3.image_processing_pil_gemma3 import Gemma3ImageProcessorPil  # noqa: E402

SEED = base.SEED + 7000


def prompt_ids(g: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    before = torch.randint(base.FIRST_ID, base.LAST_ID, (6,), generator=g)
    after = torch.randint(base.FIRST_ID, base.LAST_ID, (9,), generator=g)
    image = torch.full((4,), base.IMAGE_TOKEN_INDEX)
    ids = torch.cat([before, torch.tensor([base.BOI_TOKEN_INDEX]), image, torch.tensor([base.EOI_TOKEN_INDEX]), after])
    types = (ids == base.IMAGE_TOKEN_INDEX).long()
    return ids.unsqueeze(0), types.unsqueeze(0)


@torch.no_grad()
def model_case(out: Path) -> dict:
    case = base.CASES["multimodal_text"]
    torch.manual_seed(SEED)
    cfg = base.build_config(case)
    model = base.model_class(case)(cfg).eval()
    base.randomize_(model, SEED + 1)
    g = torch.Generator().manual_seed(SEED + 2)
    pixels = torch.rand((1, 3, 28, 28), generator=g) * 2 - 1
    ids, types = prompt_ids(g)
    vision_hidden = model.model.vision_tower(pixel_values=pixels).last_hidden_state
    features = model.model.multi_modal_projector(vision_hidden)
    logits = model(input_ids=ids, pixel_values=pixels, token_type_ids=types).logits.float()
    # The image changes the logits: the test would pass on a model that ignored it otherwise.
    blank = model(input_ids=ids, pixel_values=torch.zeros_like(pixels), token_type_ids=types).logits.float()
    folder = out / "multimodal_image"
    folder.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(str(folder), safe_serialization=True)
    for extra in folder.iterdir():
        if extra.name not in ("config.json", "model.safetensors", "images", "reference.safetensors", "reference.json", "processed.safetensors"):
            extra.unlink()
    save_file(
        {
            "pixel_values": pixels.contiguous(),
            "vision_hidden": vision_hidden.contiguous(),
            "image_features": features.contiguous(),
            "input_ids": ids.contiguous(),
            "token_type_ids": types.contiguous(),
            "logits": logits.contiguous(),
        },
        str(folder / "reference.safetensors"),
        metadata={"format": "pt"},
    )
    return {
        "T": ids.shape[1],
        "max_abs_logit": float(logits.abs().max()),
        "image_effect_max_abs": float((logits - blank).abs().max()),
    }


def report_image(w: int, h: int, mode: str) -> Image.Image:
    """A small picture with the look of a lab report: a header band, rows of 'text', a table grid."""
    img = Image.new("RGB", (w, h), (250, 250, 246))
    d = ImageDraw.Draw(img)
    d.rectangle([0, 0, w, h // 6], fill=(30, 70, 140))
    for i in range(5):
        y = h // 5 + i * h // 7
        d.line([(4, y), (w - 4, y)], fill=(120, 120, 120), width=1)
        d.rectangle([6, y + 2, 6 + (i * 13) % (w // 2) + 10, y + 6], fill=(20, 20, 20))
        d.rectangle([w // 2, y + 2, w // 2 + 8 + (i * 7) % 20, y + 6], fill=(200, 30, 30) if i == 2 else (20, 20, 20))
    rng = np.random.default_rng(7)
    arr = np.asarray(img).astype(np.int16) + rng.integers(-12, 12, (h, w, 3))
    img = Image.fromarray(np.clip(arr, 0, 255).astype(np.uint8))
    if mode == "RGBA":
        img = img.convert("RGBA")
        a = np.asarray(img).copy()
        a[..., 3] = 200
        img = Image.fromarray(a)
    return img


def images_case(out: Path) -> dict:
    folder = out / "multimodal_image" / "images"
    folder.mkdir(parents=True, exist_ok=True)
    files = {
        "report_rgb.png": (report_image(120, 90, "RGB"), "PNG", {}),
        "report_rgba.png": (report_image(61, 203, "RGBA"), "PNG", {}),
        "report.jpg": (report_image(150, 110, "RGB"), "JPEG", {"quality": 85}),
    }
    tensors = {}
    for name, (img, fmt, kw) in files.items():
        buf = io.BytesIO()
        img.save(buf, format=fmt, **kw)
        (folder / name).write_bytes(buf.getvalue())
        decoded = Image.open(io.BytesIO(buf.getvalue()))
        decoded.load()
        key = name.replace(".", "_")
        # What the processor's do_convert_rgb makes of it (RGBA is composited over white).
        tensors[f"decoded_{key}"] = torch.from_numpy(np.asarray(convert_to_rgb(decoded)).copy())
        for size in (28, 64):
            proc = Gemma3ImageProcessorPil(size={"height": size, "width": size})
            pv = proc(images=decoded, return_tensors="pt")["pixel_values"]
            tensors[f"{key}_{size}"] = pv.float().contiguous()
    save_file(tensors, str(out / "multimodal_image" / "processed.safetensors"), metadata={"format": "pt"})
    return {k: list(v.shape) for k, v in tensors.items()}


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", required=True, type=Path)
    args = ap.parse_args()
    torch.set_num_threads(1)
    torch.use_deterministic_algorithms(True)
    info = {"model": model_case(args.out), "images": images_case(args.out)}
    (args.out / "multimodal_image" / "reference.json").write_text(json.dumps(info, indent=2, sort_keys=True) + "\n")
    print(json.dumps(info["model"]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
