"""Machine identities: what decides whether floats repeat bit for bit, read on x86, on ARM and where there is no
/proc/cpuinfo; two CPUs that ATen both calls "AVX512" are told apart."""
import json

from plasticity_nb.core.cpu import identity_name, machine_identity, read_cpu_identity
from tests.loop_compat import recording_for

X86 = """processor\t: 0
vendor_id\t: AuthenticAMD
cpu family\t: 25
model\t\t: 17
model name\t: AMD EPYC
cache size\t: 1024 KB
flags\t\t: fpu sse2 avx avx2 fma avx512f avx512bw avx512_bf16 avx512_vnni sha_ni

processor\t: 1
vendor_id\t: AuthenticAMD
model name\t: AMD EPYC
"""
XEON = X86.replace("AuthenticAMD", "GenuineIntel").replace("AMD EPYC", "Intel(R) Xeon(R) Processor").replace(
    " avx512_bf16", " amx_tile amx_bf16")
ARM = """processor\t: 0
BogoMIPS\t: 2000.00
Features\t: fp asimd evtstrm aes sha1 sha2 crc32 atomics fphp asimdhp asimddp sve bf16 i8mm
CPU implementer\t: 0x41
CPU architecture: 8
CPU variant\t: 0x1
CPU part\t: 0xd40
"""


def identity_of(tmp_path, text):
    path = tmp_path / "cpuinfo"
    path.write_text(text)
    return read_cpu_identity(path)


def test_an_x86_cpu_is_named_with_the_flags_that_select_kernels(tmp_path):
    cpu = identity_of(tmp_path, X86)
    assert (cpu["vendor"], cpu["model"], cpu["family"], cpu["model_number"]) == ("AuthenticAMD", "AMD EPYC", "25", "17")
    assert cpu["flags"] == ["avx", "avx2", "avx512_bf16", "avx512_vnni", "avx512bw", "avx512f", "fma"]
    assert cpu != identity_of(tmp_path, XEON)  # both "AVX512" to ATen


def test_an_arm_cpu_is_named_by_implementer_and_part(tmp_path):
    cpu = identity_of(tmp_path, ARM)
    assert cpu["model"] == "0x41 0xd40 0x1" and cpu["vendor"] == "0x41"
    assert cpu["flags"] == ["asimd", "asimddp", "asimdhp", "bf16", "i8mm", "sve"]


def test_without_proc_cpuinfo_the_identity_says_where_it_came_from(tmp_path):
    cpu = read_cpu_identity(tmp_path / "missing")
    assert cpu["source"] in ("platform", "sysctl") and cpu["model"]
    json.dumps(cpu)  # recorded as JSON in provenance.json and the loop recordings


def test_a_recording_is_used_bitwise_only_on_its_own_machine(tmp_path):
    here = machine_identity()
    other = {**here, "flags": [*(here["flags"] or []), "amx_tile"]}
    assert recording_for(other) is None
    assert identity_name(here) != identity_name(other)
