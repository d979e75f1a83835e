"""What this CPU is, as far as the kernels that compute our floats can tell (read without torch)."""
from __future__ import annotations

import copy
import functools
import hashlib
import json
import platform
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

CPUINFO = Path("/proc/cpuinfo")
# Instruction-set extensions that make oneDNN and ATen pick other kernels, so that floats differ bit for bit
# between CPUs that differ in them (x86 vector widths, bf16/fp16/int8 dot products, AMX tiles; ARM's NEON
# half precision, SVE, bf16 and int8 matrix multiply). /proc/cpuinfo's spellings (`flags` on x86,
# `Features` on ARM).
KERNEL_FLAGS = ("avx", "avx2", "fma", "f16c", "avx512f", "avx512dq", "avx512bw", "avx512vl", "avx512_vnni",
                "avx512_bf16", "avx512_fp16", "avx_vnni", "amx_tile", "amx_bf16", "amx_int8", "amx_fp16",
                "asimd", "asimdhp", "asimddp", "sve", "sve2", "bf16", "i8mm", "svebf16", "svei8mm")


def cpu_identity() -> dict[str, Any]:
    """This machine's `read_cpu_identity` (read once per process; a copy the caller may change)."""
    return copy.deepcopy(_this_cpu())


@functools.lru_cache(maxsize=1)
def _this_cpu() -> dict[str, Any]:
    return read_cpu_identity(CPUINFO)


def read_cpu_identity(cpuinfo: Path) -> dict[str, Any]:
    """What a CPU is, as far as the kernels that compute our floats can tell: architecture, vendor, model
    (name, family and number), cache size and the KERNEL_FLAGS it has; `source` says where it was read.
    Where /proc/cpuinfo is missing (macOS, Windows), what `sysctl` or `platform` say, with flags unknown (None)."""
    fields = _cpuinfo_fields(cpuinfo)
    if fields:
        flags = set((fields.get("flags") or fields.get("Features") or "").split())
        model = fields.get("model name") or fields.get("Processor") or " ".join(
            fields.get(k, "?") for k in ("CPU implementer", "CPU part", "CPU variant"))
        return {"arch": platform.machine(), "vendor": fields.get("vendor_id") or fields.get("CPU implementer", ""),
                "model": model, "family": fields.get("cpu family", ""), "model_number": fields.get("model", ""),
                "cache": fields.get("cache size", ""), "flags": sorted(flags & set(KERNEL_FLAGS)),
                "source": str(cpuinfo)}
    brand, flags = _sysctl_cpu() if sys.platform == "darwin" else ("", None)
    return {"arch": platform.machine(), "vendor": "", "model": brand or platform.processor() or platform.machine(),
            "family": "", "model_number": "", "cache": "", "flags": flags,
            "source": "sysctl" if brand else "platform"}


def _cpuinfo_fields(cpuinfo: Path) -> dict[str, str]:
    """`key: value` lines of the first processor's block (ARM lists its model after the blocks: kept too)."""
    try:
        text = cpuinfo.read_text()
    except OSError:
        return {}
    fields: dict[str, str] = {}
    for line in text.splitlines():
        key, sep, value = line.partition(":")
        if sep and key.strip() not in fields:
            fields[key.strip()] = value.strip()
    return fields


def _sysctl_cpu() -> tuple[str, list[str] | None]:
    """macOS: the brand string, and the KERNEL_FLAGS among its feature lists (Intel) or FEAT_ names (Apple)."""
    def read(*names: str) -> str:
        try:
            return subprocess.run(["sysctl", "-n", *names], capture_output=True, text=True, timeout=10).stdout
        except (OSError, subprocess.SubprocessError):
            return ""
    brand = read("machdep.cpu.brand_string").strip()
    features = read("machdep.cpu.features", "machdep.cpu.leaf7_features").lower().replace(".", "_").split()
    arm = [name.lower() for name in re.findall(r"hw\.optional\.arm\.FEAT_(\w+): 1", read("-a"))]
    flags = sorted(set(features + arm) & set(KERNEL_FLAGS))
    return brand, flags if features or arm else None


def machine_identity() -> dict[str, Any]:
    """What decides, besides the code, whether a CPU computation repeats bit for bit: the CPU (`cpu_identity`),
    torch's version and the ATen kernels it dispatched to. A bitwise expectation holds only where all are equal
    (single-threaded: the thread count is the caller's to fix)."""
    import torch  # here, not at the top: the rest of this module serves code that runs without torch

    return {**cpu_identity(), "torch": torch.__version__,
            "aten_cpu_capability": torch.backends.cpu.get_cpu_capability()}


def identity_name(identity: dict[str, Any]) -> str:
    """A file name for a machine identity: its CPU model in short, and a hash of the whole identity."""
    slug = re.sub(r"[^a-z0-9]+", "-", identity.get("model", "cpu").lower()).strip("-")[:40] or "cpu"
    digest = hashlib.sha256(json.dumps(identity, sort_keys=True).encode()).hexdigest()[:10]
    return f"{slug}-{digest}"
