"""The precision a run trains at: bf16 exactly where the device computes it natively, fp32 elsewhere."""
import pytest

from plasticity_nb.core.cpu import cpu_identity
from plasticity_nb.training import runtime
from plasticity_nb.training.runtime import native_precision, precision_for

AVX2 = ["avx", "avx2", "fma", "f16c"]
AVX512 = AVX2 + ["avx512f", "avx512bw", "avx512dq", "avx512vl", "avx512_vnni"]  # Skylake to Ice Lake


@pytest.mark.parametrize("flags, precision", [
    (AVX2, "fp32"),  # AMD EPYC AVX2-only: bf16 emulated, 9x slower
    (AVX512, "fp32"),  # AVX-512 without bf16 dot products: emulated, 0.56-0.69x fp32
    (AVX512 + ["avx512_bf16"], "bf16"),  # AMD EPYC Genoa, Cooper Lake
    (AVX512 + ["avx512_bf16", "amx_tile", "amx_bf16"], "bf16"),  # Sapphire Rapids and later
    (["asimd", "asimdhp"], "fp32"),  # ARM: oneDNN's bf16 path is not ours to rely on
    (None, "fp32"),  # flags unknown (macOS via platform)
])
def test_a_cpu_trains_in_bf16_only_with_native_bf16(flags, precision):
    assert precision_for(flags, None) == precision


@pytest.mark.parametrize("capability, precision", [((7, 0), "fp32"), ((7, 5), "fp32"), ((8, 0), "bf16"),
                                                   ((8, 6), "bf16"), ((9, 0), "bf16"), ((12, 0), "bf16")])
def test_a_gpu_trains_in_bf16_from_compute_capability_8(capability, precision):
    assert precision_for(AVX2, capability) == precision  # the GPU decides, whatever the host CPU


def test_this_machine_resolves_from_its_own_flags_and_gpu(monkeypatch):
    monkeypatch.setattr(runtime.torch.cuda, "is_available", lambda: False)
    assert native_precision() == precision_for(cpu_identity()["flags"], None)
    monkeypatch.setattr(runtime.torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(runtime.torch.cuda, "get_device_capability", lambda device=None: (7, 5))
    assert native_precision() == "fp32"  # a T4
