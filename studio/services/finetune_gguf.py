"""A trained LoRA adapter written as a GGUF adapter file, which llama.cpp applies on top of
the unchanged base model (``Llama(model_path=base, lora_path=adapter)``).

So the fine-tuned built-in is served by the same runtime at nearly the same speed as the
base: the base's quantized weights stay as they are, and each adapted layer adds two small
products of rank r. The file follows llama.cpp's own converter
(``convert_lora_to_gguf.py``): ``general.type = adapter``, ``adapter.type = lora``,
``adapter.lora.alpha``, and for each adapted weight ``<gguf name>.lora_a`` (r x in) and
``<gguf name>.lora_b`` (out x r). llama.cpp stores the query and key weights of a Llama
model with their rows permuted for its rotary embedding (and ``transformers`` undoes that
when it loads a GGUF), so ``lora_b`` of those two is permuted the same way here.

Rules: no check here; only the fine-tuning worker writes these files.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import numpy as np

from studio.core.errors import ConfigError

__all__ = ["GGUF_NAMES", "gguf_name", "write_lora_gguf"]

GGUF_NAMES = {
    "self_attn.q_proj": "attn_q",
    "self_attn.k_proj": "attn_k",
    "self_attn.v_proj": "attn_v",
    "self_attn.o_proj": "attn_output",
    "mlp.gate_proj": "ffn_gate",
    "mlp.up_proj": "ffn_up",
    "mlp.down_proj": "ffn_down",
}
_PEFT_NAME = re.compile(r"layers\.(\d+)\.(\w+\.\w+)\.lora_([AB])\.weight$")


def gguf_name(peft_name: str) -> tuple[str, str] | None:
    """(``blk.N.attn_q.weight``, ``a`` or ``b``) for a peft LoRA weight's name."""
    match = _PEFT_NAME.search(peft_name)
    if match is None or match.group(2) not in GGUF_NAMES:
        return None
    layer, module, which = match.groups()
    return f"blk.{layer}.{GGUF_NAMES[module]}.weight", which.lower()


def _permute(rows: np.ndarray, n_head: int) -> np.ndarray:
    """llama.cpp's rotary row order (convert_hf_to_gguf's ``LlamaModel.permute``)."""
    out = rows.shape[0]
    return (
        rows.reshape(n_head, 2, out // n_head // 2, *rows.shape[1:])
        .swapaxes(1, 2)
        .reshape(rows.shape)
    )


def write_lora_gguf(
    path: Path,
    state: dict[str, Any],
    *,
    alpha: float,
    n_head: int,
    n_head_kv: int,
    name: str = "studio fine-tune",
) -> int:
    """Write the adapter ``state`` (peft's ``get_peft_model_state_dict``, tensors) to
    ``path``; the number of adapted weights."""
    import gguf

    pairs: dict[str, dict[str, np.ndarray]] = {}
    for key, tensor in state.items():
        named = gguf_name(key)
        if named is None:
            raise ConfigError(f"The adapter has a weight llama.cpp cannot apply: {key}.")
        target, which = named
        array = tensor.detach().to("cpu").float().numpy()
        if which == "b" and ".attn_q." in target:
            array = _permute(array, n_head)
        elif which == "b" and ".attn_k." in target:
            array = _permute(array, n_head_kv)
        pairs.setdefault(target, {})[which] = np.ascontiguousarray(array, dtype=np.float32)
    tmp = path.with_suffix(".tmp")  # written beside, then renamed: never half a file
    writer = gguf.GGUFWriter(str(tmp), arch="llama")
    writer.add_type(gguf.GGUFType.ADAPTER)
    writer.add_name(name)
    writer.add_string(gguf.Keys.Adapter.TYPE, "lora")
    writer.add_float32(gguf.Keys.Adapter.LORA_ALPHA, float(alpha))
    for target in sorted(pairs):
        both = pairs[target]
        if set(both) != {"a", "b"}:
            raise ConfigError(f"The adapter's weight {target} lacks its A or B half.")
        writer.add_tensor(f"{target}.lora_a", both["a"])
        writer.add_tensor(f"{target}.lora_b", both["b"])
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    tmp.replace(path)
    return len(pairs)
