#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0
"""persistmem vmtest runner.

Boots the built kernel under QEMU (TCG, 2 vCPUs, 2 NUMA nodes, -cpu max for
nested SVM) once per test listed in vmtests.conf, as many tests at once as
the host has CPUs and memory for (benchmarks one at a time). The guest's init
(tools/testing/selftests/persistmem/init.c) runs the test's stage programs
and kexecs between stages; it writes one KTAP document per stage to the
second serial port. This script checks every stage of every test and
prints one KTAP line per test, then "N passed, N failed" as its last line.
Exit status is non-zero on any failure.

A test fails on: QEMU timeout, kernel panic, kernel WARNING/BUG, an init
error, a missing stage, a stage without test points, a wrong plan, a
failed test point, or a stage that ended otherwise than expected (held for
kexec before the last stage, exit 0 on the last). Negative harness tests
(expect fail:<reason>) pass only if the runner finds exactly that reason.
"""

import argparse
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import threading
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BUILD = os.environ.get("BUILD", os.path.join(ROOT, "build"))
# Built from the overlaid tree: the programs use the tree's kselftest.h.
TESTDIR = os.path.join(BUILD, "linux/tools/testing/selftests/persistmem")
TOOLSDIR = os.path.join(BUILD, "linux/tools/persistmem")

RE_HEADER = re.compile(r"^# vmtest: test (\S+) stage (\d+) kernel (\S+) uptime ([\d.]+)")
RE_RESULT = re.compile(r"^(ok|not ok) (\d+)\s*(.*)$")
RE_PLAN = re.compile(r"^1\.\.(\d+)$")
RE_END = re.compile(r"^# vmtest: end stage (\d+) (hold|exit (\d+)|signal (\d+))$")
RE_INIT_ERR = re.compile(r"^# vmtest: init error: (.*)$")
RE_PANIC = re.compile(r"Kernel panic - not syncing:.*")
RE_WARN = re.compile(r"^(?:\[[\s\d.]+\] )?(WARNING: .*|BUG: .*|Oops: .*)$", re.M)
RE_BENCH = re.compile(r"^# bench: (\S+) ([-\d.]+) (\S+)$")
RE_HANDOVER = re.compile(r"persist_alloc: handover frozen: (\d+) blocks and (\d+) extents in "
                         r"(\d+) runs, (\d+) \+ (\d+) bytes, in (\d+) us")
RE_MEMMAP = re.compile(r"persist_alloc: struct pages of (\d+) GiB carved at boot initialized "
                       r"in (\d+) us")
RE_ADOPTED = re.compile(r"persist_alloc: adopted (\d+) of (\d+) handed-over blocks and (\d+) of "
                        r"(\d+) extents in (\d+) runs, taking (\d+) us")
RE_PREBUILD = re.compile(r"persist_alloc: node (\d+): (\d+) handed-over folios built for "
                         r"their owners in (\d+) us, (\d+) left")


class Test:
    def __init__(self, name, stages, timeout, memory, expect, program, *args):
        self.name = name
        self.stages = int(stages)
        self.timeout = int(timeout)
        self.memory = memory
        self.expect = expect
        self.program = name if program == "-" else program
        self.kernel_args = " ".join(args)


def load_manifest(path):
    tests = []
    with open(path) as f:
        for lineno, line in enumerate(f, 1):
            line = line.split("#", 1)[0].strip()
            if not line:
                continue
            fields = line.split()
            if len(fields) < 6:
                sys.exit(f"{path}:{lineno}: expected at least 6 fields, got {len(fields)}")
            tests.append(Test(*fields))
    return tests


def run(cmd, **kw):
    subprocess.run(cmd, check=True, **kw)


def build_programs(hdr, bindir):
    run(["make", "-s", "-C", TESTDIR, f"OUTPUT={bindir}",
         f"KHDR_INCLUDES=-isystem {hdr}/include", "-j2"])
    run(["make", "-s", "-C", TOOLSDIR, f"OUTPUT={bindir}/persistmem",
         f"KHDR_INCLUDES=-isystem {hdr}/include", "-j2"])


def build_guest_initramfs(obj, bindir):
    """The reference VMM's guest: pm-workload as its init."""
    out = os.path.join(bindir, "guest.cpio")
    listfile = out + ".list"
    with open(listfile, "w") as f:
        f.write("dir /dev 0755 0 0\n"
                "nod /dev/console 0600 0 0 c 5 1\n"
                "nod /dev/port 0600 0 0 c 1 4\n"
                f"file /init {bindir}/persistmem/pm-workload 0755 0 0\n")
    with open(out, "wb") as f:
        run([os.path.join(obj, "usr/gen_init_cpio"), listfile], stdout=f)
    return out


def kvm_selftest_files(tests):
    """/tests/kvm/<bin> for each KVM selftest binary of scripts/kvm-selftests.sh."""
    kvmdir = os.path.join(BUILD, "kvm-selftests")
    bins = []
    if os.path.isdir(kvmdir):
        bins = sorted(f for f in os.listdir(kvmdir)
                      if os.path.isfile(os.path.join(kvmdir, f))
                      and os.access(os.path.join(kvmdir, f), os.X_OK))
    for t in tests:
        if (t.program == "kvm_selftest" and t.name not in bins
                and "vmtest.kvm=" not in t.kernel_args):
            print(f"vmtest: {kvmdir}/{t.name} missing (scripts/kvm-selftests.sh): "
                  f"{t.name} will fail", file=sys.stderr)
    return ["dir /tests/kvm 0755 0 0"] + [
        f"file /tests/kvm/{b} {kvmdir}/{b} 0755 0 0" for b in bins]


def build_initramfs(tests, obj, bindir, out):
    """Pack init, test programs and the kernel itself (for kexec)."""
    gen = os.path.join(obj, "usr/gen_init_cpio")
    kernel = os.path.join(obj, "arch/x86/boot/bzImage")
    lines = [
        "dir /dev 0755 0 0",
        "nod /dev/console 0600 0 0 c 5 1",
        "dir /proc 0755 0 0",
        "dir /sys 0755 0 0",
        "dir /tmp 01777 0 0",
        "dir /boot 0755 0 0",
        "dir /tests 0755 0 0",
        f"file /init {bindir}/init 0755 0 0",
        f"file /boot/bzImage {kernel} 0644 0 0",
        "dir /bin 0755 0 0",
        f"file /bin/pm-vmm {bindir}/persistmem/pm-vmm 0755 0 0",
        f"file /bin/pm-inspect {bindir}/persistmem/pm-inspect 0755 0 0",
        f"file /boot/guest.cpio {build_guest_initramfs(obj, bindir)} 0644 0 0",
    ]
    progs = sorted({t.program for t in tests})
    for p in progs:
        lines.append(f"file /tests/{p} {bindir}/{p} 0755 0 0")
    for t in tests:
        if t.program != t.name:
            lines.append(f"slink /tests/{t.name} {t.program} 0777 0 0")
    lines += kvm_selftest_files(tests)
    listfile = out + ".list"
    with open(listfile, "w") as f:
        f.write("\n".join(lines) + "\n")
    with open(out, "wb") as f:
        run([gen, listfile], stdout=f)


# Machines a test picks with vmtest.machine= among its kernel arguments.
# The vIOMMU comes first, before the devices it translates; edu is QEMU's
# educational PCI device, which copies between its buffer and RAM by DMA.
MACHINES = {
    "pc": [],
    "vtd": ["-machine", "q35", "-device", "intel-iommu,intremap=on,x-scalable-mode=off",
            "-device", "edu"],
    # Two edu on the root bus: two IOMMU groups of one device each.
    "vtd2": ["-machine", "q35", "-device", "intel-iommu,intremap=on,x-scalable-mode=off",
             "-device", "edu", "-device", "edu"],
    "vtd-sm": ["-machine", "q35", "-device", "intel-iommu,intremap=on,x-scalable-mode=on",
               "-device", "edu"],
    "vtd2-sm": ["-machine", "q35", "-device", "intel-iommu,intremap=on,x-scalable-mode=on",
                "-device", "edu", "-device", "edu"],
    # Two more edu behind a conventional PCI bridge: one IOMMU group.
    "vtd-bridge": ["-machine", "q35", "-device", "intel-iommu,intremap=on,x-scalable-mode=off",
                   "-device", "edu", "-device", "pci-bridge,id=br1,chassis_nr=1",
                   "-device", "edu,bus=br1,addr=1", "-device", "edu,bus=br1,addr=2"],
}


def machine_args(test):
    m = re.search(r"(?:^|\s)vmtest\.machine=(\S+)", test.kernel_args)
    name = m.group(1) if m else "pc"
    if name not in MACHINES:
        sys.exit(f"{test.name}: unknown vmtest.machine={name} (known: {' '.join(MACHINES)})")
    return MACHINES[name]


def qemu_cmd(test, kernel, initrd, console, results):
    half = memory_mib(test.memory) // 2
    cmdline = ("console=ttyS0 panic=-1 oops=panic retain_initrd liveupdate=on "
               f"{test.kernel_args} vmtest.test={test.name} vmtest.stage=1")
    return [
        # One CPU per socket: each node's CPU has its own LLC, so the
        # scheduler's topology check does not warn about the NUMA split.
        "qemu-system-x86_64", "-accel", "tcg", "-cpu", "max",
        "-smp", "2,sockets=2,cores=1,threads=1",
        "-m", f"{2 * half}M",
        "-object", f"memory-backend-ram,id=m0,size={half}M",
        "-object", f"memory-backend-ram,id=m1,size={half}M",
        "-numa", "node,nodeid=0,cpus=0,memdev=m0",
        "-numa", "node,nodeid=1,cpus=1,memdev=m1",
        "-nographic", "-nodefaults", "-no-reboot",
        "-serial", f"file:{console}", "-serial", f"file:{results}",
        "-kernel", kernel, "-initrd", initrd, "-append", cmdline,
    ] + machine_args(test)


def memory_mib(s):
    m = re.fullmatch(r"(\d+)([MG])", s)
    if not m:
        sys.exit(f"bad memory size {s}")
    return int(m.group(1)) * (1024 if m.group(2) == "G" else 1)


class Stage:
    def __init__(self, num, kernel, uptime):
        self.num = num
        self.kernel = kernel
        self.uptime = float(uptime)
        self.results = []
        self.plan = None
        self.end = None


def parse_results(text):
    """Split the results port output into per-stage KTAP documents."""
    stages, notes = [], {"init_error": None, "done": False}
    cur = None
    for line in text.splitlines():
        line = line.rstrip("\r")
        m = RE_HEADER.match(line)
        if m:
            cur = Stage(int(m.group(2)), m.group(3), m.group(4))
            stages.append(cur)
            continue
        m = RE_INIT_ERR.match(line)
        if m:
            notes["init_error"] = m.group(1)
            continue
        if line == "# vmtest: done":
            notes["done"] = True
            continue
        if cur is None:
            continue
        m = RE_RESULT.match(line)
        if m:
            cur.results.append((m.group(1) == "ok", int(m.group(2)), m.group(3)))
            continue
        m = RE_PLAN.match(line)
        if m:
            cur.plan = int(m.group(1))
            continue
        m = RE_END.match(line)
        if m:
            cur.end = m.group(2)
    return stages, notes


def judge(test, rc, stages, notes, console_text):
    """Return (reason, message) of the first failure, or (None, summary)."""
    if rc == 124:
        last = stages[-1].num if stages else 0
        return "timeout", f"QEMU killed after {test.timeout} s (last stage seen: {last})"
    m = RE_PANIC.search(console_text)
    if m:
        return "panic", m.group(0).strip()
    m = RE_WARN.search(console_text)
    if m:
        return "kernel-warning", m.group(1).strip()
    if notes["init_error"]:
        return "init-error", notes["init_error"]
    if rc != 0:
        return "qemu-error", f"QEMU exited with status {rc}"
    seen = {s.num: s for s in stages}
    for num in range(1, test.stages + 1):
        if num not in seen:
            return "missing-stage", f"stage {num} of {test.stages} produced no KTAP document"
    extra = [s.num for s in stages if s.num > test.stages]
    if extra or len(stages) != test.stages:
        return "bad-end", f"unexpected stages {[s.num for s in stages]}, want 1..{test.stages}"
    for s in stages:
        if not s.results:
            return "no-results", f"stage {s.num} reported no test points"
        if s.plan != len(s.results):
            return "no-results", f"stage {s.num}: plan {s.plan}, {len(s.results)} test points"
        bad = [f"{n} {d}" for ok, n, d in s.results if not ok]
        if bad:
            return "failed-points", f"stage {s.num}: not ok " + "; not ok ".join(bad)
        want = "hold" if s.num < test.stages else "exit 0"
        if s.end != want:
            return "bad-end", f"stage {s.num} ended with '{s.end}', expected '{want}'"
    if not notes["done"]:
        return "bad-end", "init never reported done"
    points = sum(len(s.results) for s in stages)
    boots = ", ".join(f"{s.uptime:.2f}" for s in stages)
    kernels = "1 kernel" if len(stages) == 1 else f"{len(stages)} kernels"
    return None, f"{points} test points in {kernels} (init reached at uptime {boots} s)"


def run_test(test, kernel, initrd, logdir, expect_override):
    console = os.path.join(logdir, f"{test.name}.console.log")
    results = os.path.join(logdir, f"{test.name}.ktap")
    for f in (console, results):
        if os.path.exists(f):
            os.unlink(f)
    cmd = ["timeout", "-k", "5", str(test.timeout)] + qemu_cmd(test, kernel, initrd,
                                                               console, results)
    with open(os.path.join(logdir, f"{test.name}.cmd"), "w") as f:
        f.write(" ".join(cmd) + "\n")
    start = time.monotonic()
    env = dict(os.environ)
    proc = subprocess.run(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                          stderr=open(os.path.join(logdir, f"{test.name}.qemu.err"), "w"),
                          env=env)
    wall = time.monotonic() - start
    text = open(results, errors="replace").read() if os.path.exists(results) else ""
    ctext = open(console, errors="replace").read() if os.path.exists(console) else ""
    stages, notes = parse_results(text)
    reason, msg = judge(test, proc.returncode, stages, notes, ctext)
    expect = expect_override or test.expect
    if expect == "pass":
        ok = reason is None
    else:
        ok = reason is not None and expect == f"fail:{reason}"
        msg = f"runner reported {reason or 'pass'}: {msg} (expected {expect})"
    return ok, msg, wall, stages


# Host memory a QEMU TCG process takes besides its guest's: at most 1 GiB of
# translation cache, and its own.
VM_OVERHEAD_MIB = 1024


def memory_budget_mib():
    """Guest memory the runner lets VMs running side by side add up to.

    What the host has available now, less 4 GiB for QEMU itself, the page
    cache and whatever else runs; a test larger than that still runs, alone.
    """
    with open("/proc/meminfo") as f:
        for line in f:
            if line.startswith("MemAvailable:"):
                return max(0, int(line.split()[1]) // 1024 - 4096)
    return 0


def run_tests(tests, jobs, budget, kernel, initrd, logdir, expect):
    """Run @tests, up to @jobs at once, and yield (index, test, result) in order.

    A QEMU TCG guest keeps about one host CPU busy (the test program runs on
    one vCPU while the other idles), so two of them use a 2-CPU host fully.
    Tests start in manifest order; the next one waits while the guest memory
    of those running plus its own, each with VM_OVERHEAD_MIB for QEMU
    (its translation cache above all), would exceed @budget, unless none
    is running. Each test has its own log files and QEMU process, nothing else
    is shared; results are yielded in manifest order, each as soon as it and
    every test before it have finished.
    """
    done = {}
    cond = threading.Condition()
    running = {}

    def worker(i, t):
        # Whatever happens, the test gets a result: the main thread waits for it.
        res = (False, "runner error: no result", 0.0, [])
        try:
            res = run_test(t, kernel, initrd, logdir, expect)
        except BaseException as e:  # SystemExit of a bad manifest line included
            res = (False, f"runner error: {e!r}", 0.0, [])
        finally:
            with cond:
                del running[i]
                done[i] = res
                cond.notify_all()

    pending = list(enumerate(tests, 1))
    nxt = 1
    while nxt <= len(tests):
        with cond:
            while pending and len(running) < jobs:
                i, t = pending[0]
                mem = memory_mib(t.memory) + VM_OVERHEAD_MIB
                if running and sum(running.values()) + mem > budget:
                    break
                pending.pop(0)
                running[i] = mem
                threading.Thread(target=worker, args=(i, t), daemon=True).start()
            while nxt not in done and (not pending or len(running) >= jobs or
                                       sum(running.values()) + VM_OVERHEAD_MIB
                                       + memory_mib(pending[0][1].memory) > budget):
                cond.wait()
            ready = []
            while nxt in done:
                ready.append((nxt, tests[nxt - 1], done.pop(nxt)))
                nxt += 1
        yield from ready


def gmem_bench_lines(figures):
    """The guest_memfd_persist_bench table, if that benchmark ran."""
    cols = ["gmem_1g_hvo", "gmem_1g", "gmem_1g_ndm", "gmem_2m_hvo", "gmem_2m", "gmem_4k",
            "gmem_baseline_memfd_luo", "gmem_baseline_memfd_luo_thp"]
    if not any(k in cols for k, _ in figures):
        return []

    def fig(key, unit, fmt=",.0f"):
        v = figures.get((key, unit))
        return "n/a" if v is None else format(v, fmt)

    # Handover metadata: what each preserve ioctl wrote, by KHO's count (stage 1),
    # and for ours its runs in persist_alloc's extent array as received (stage 2).
    for c in cols[:6]:
        written = figures.get((c, "metadata_bytes_per_gib_written"))
        runs = figures.get((c, "metadata_bytes_per_gib_persist_alloc"))
        if written is not None and runs is not None:
            figures[(c, "metadata_bytes_per_gib")] = written + runs
    for c in cols[:6]:
        for base, suffix in (("gmem_baseline_memfd_luo", "memfd_luo"),
                             ("gmem_baseline_memfd_luo_thp", "memfd_luo_thp")):
            ours = figures.get((c, "metadata_bytes_per_gib"))
            theirs = figures.get((base, "metadata_bytes_per_gib"))
            if ours and theirs:
                figures[(c, f"x_less_metadata_than_{suffix}")] = theirs / ours

    lines = ["", "Persistent guest_memfd vs memfd_luo, per GiB, one VM run: preserve and "
             "freeze in its first kernel, each retrieve figure the median of the rounds "
             "(kexecs) that measured it, ratios the median of each round's ratio", "",
             "| per GiB | " + " | ".join(cols) + " |", "|---|" + "---|" * len(cols)]
    for label, unit, fmt in [
            ("preserve ioctl (us)", "us_per_gib_preserve", ",.0f"),
            ("freeze (us)", "us_per_gib_freeze", ",.1f"),
            ("preserve + freeze (us)", "us_per_gib_preserve_freeze", ",.1f"),
            ("retrieve ioctl (us)", "us_per_gib_retrieve", ",.1f"),
            ("retrieve in kernel (us)", "us_per_gib_retrieve_kernel", ",.1f"),
            ("first use of every granule: fallocate (us)", "us_per_gib_first_use", ",.1f"),
            ("retrieve + first use (us)", "us_per_gib_retrieve_use", ",.1f"),
            ("handover metadata (bytes)", "metadata_bytes_per_gib", ",.1f"),
            ("of which written at preserve, KHO's count (bytes)",
             "metadata_bytes_per_gib_written", ",.1f"),
            ("of which runs in persist_alloc's array, received (bytes)",
             "metadata_bytes_per_gib_persist_alloc", ",.1f"),
            ("records alone: description and runs or folios (bytes)",
             "metadata_bytes_per_gib_records", ",.1f"),
            ("x faster preserve+freeze than memfd_luo 4K",
             "x_faster_preserve_freeze_than_memfd_luo", ",.1f"),
            ("x faster preserve+freeze than memfd_luo THP",
             "x_faster_preserve_freeze_than_memfd_luo_thp", ",.1f"),
            ("x faster retrieve than memfd_luo 4K", "x_faster_retrieve_than_memfd_luo", ",.1f"),
            ("x faster retrieve than memfd_luo THP", "x_faster_retrieve_than_memfd_luo_thp",
             ",.1f"),
            ("x faster retrieve + first use than memfd_luo 4K",
             "x_faster_retrieve_use_than_memfd_luo", ",.1f"),
            ("x faster retrieve + first use than memfd_luo THP",
             "x_faster_retrieve_use_than_memfd_luo_thp", ",.1f"),
            ("x less metadata than memfd_luo 4K", "x_less_metadata_than_memfd_luo", ",.1f"),
            ("x less metadata than memfd_luo THP", "x_less_metadata_than_memfd_luo_thp",
             ",.1f")]:
        lines.append(f"| {label} | " + " | ".join(fig(c, unit, fmt) for c in cols) + " |")
    handover = figures.get(("guest_memfd_persist_bench_handover", "bytes"))
    lines += ["", "Handover metadata, measured from what is written: the memory KHO took "
              "while the file was preserved (debugfs kho/out/serialized_bytes plus "
              "radix_bytes: descriptions, arrays and their chunks, the radix tree that lists "
              "preserved memory), all of memfd_luo's; for ours that is its description's "
              "page, into which its freeze writes its runs, plus its entries in "
              "persist_alloc's extent array as the new kernel received them (debugfs "
              "received/extents, by owner key). persist_alloc's whole handover at the "
              "first kexec, every file's runs folded together: " +
              ("n/a" if handover is None else f"{handover:,.0f} bytes") +
              " (blob and extent array, as preserved). The records alone are what the "
              "table showed before these were measured.",
              "", "The retrieve claims a persistent file's granules (O(runs)); each "
              "enters the file at its first use. First use is measured as an fallocate() "
              "of the whole file right after the retrieve, which adopts every granule; "
              "memfd_luo's retrieve already put every folio in the page cache, and its "
              "fallocate() only walks them."]
    built = [(k[0][len("prebuild_node"):], v) for k, v in sorted(figures.items())
             if k[0].startswith("prebuild_node") and k[1] == "folios"]
    if built:
        lines += ["", "Folios built at boot, before the retrieves, by persist_alloc's "
                  "prebuild workers (one per node, in the background): " + "; ".join(
                      f"node {n}: {v:,.0f} folios in "
                      f"{fig('prebuild_node' + n, 'us')} us" for n, v in built) +
                  f"; the bench waited {fig('gmem_prebuild', 'us_waited')} us for them"]
    return lines


def sizes_bench_lines(figures):
    """gmem_restore_sizes_bench: retrieve of 1, 4 and 16 GiB files."""
    if not any(k.startswith("sizes_") for k, _ in figures):
        return []

    def fig(key, unit, fmt=",.0f", scale=1.0):
        v = figures.get((key, unit))
        return "n/a" if v is None else format(v * scale, fmt)

    lines = ["", "Retrieve of a persistent guest_memfd by file size (each file fully "
             "allocated, retrieved after a kexec once the prebuild workers are done)", "",
             "| granule | size | granules | runs read | retrieve ioctl (us) | "
             "retrieve in kernel (us) | in kernel per GiB (us) | first use: fallocate (us) |",
             "|---|---|---|---|---|---|---|---|"]
    for gran, gname in (("1g", "1 GiB"), ("2m", "2 MiB")):
        for gib in (1, 4, 16):
            key = f"sizes_{gran}_{gib}g"
            lines.append(f"| {gname} | {gib} GiB | {fig(key, 'granules')} | {fig(key, 'runs')} "
                         f"| {fig(key, 'us_retrieve', ',.1f')} "
                         f"| {fig(key, 'us_retrieve_kernel', ',.1f')} "
                         f"| {fig(key, 'us_retrieve_kernel', ',.1f', 1.0 / gib)} "
                         f"| {fig(key, 'us_first_use', ',.0f')} |")
    lines += ["", "The retrieve claims the file's runs (persist_alloc checks each granule of "
              "a run); each granule enters the file at its first use. memfd_luo is not run "
              "at these sizes (no room for a 16 GiB memfd next to the pools); its retrieve "
              "is linear in its folios, per GiB in the table above."]
    return lines


# iommufd_persist_bench's configurations, by the low byte of their tokens.
IOFD_BENCH = ["iofd_2m_1g", "iofd_2m_4g", "iofd_2m_16g", "iofd_1g_1g", "iofd_1g_4g",
              "iofd_1g_16g"]
RE_IOFD_FREEZE = re.compile(r"iommufd_luo: token 0x6269(\w\w\w\w) frozen in (\d+) us: "
                            r"(\d+) IOAS, (\d+) areas, (\d+) HWPTs, (\d+) table chunks, "
                            r"(\d+) bytes of description")


def iofd_freeze_figures(text, figures):
    """Each iommufd's freeze line of iommufd_persist_bench's real kexec."""
    for m in RE_IOFD_FREEZE.finditer(text):
        i = int(m.group(1), 16)
        if i < len(IOFD_BENCH):
            figures[(IOFD_BENCH[i], "us_freeze")] = int(m.group(2))
            figures[(IOFD_BENCH[i], "table_chunks")] = int(m.group(6))
            figures[(IOFD_BENCH[i], "description_bytes")] = int(m.group(7))


def iofd_bench_lines(figures):
    """The iommufd_persist_bench table, if that benchmark ran."""
    if not any(k in IOFD_BENCH for k, _ in figures):
        return []

    def fig(key, unit, fmt):
        v = figures.get((key, unit))
        return "n/a" if v is None else format(v, fmt)

    heads = [f"{k.split('_')[1].upper()} granules, {k.split('_')[2][:-1]} GiB mapped"
             for k in IOFD_BENCH]
    # The handover's whole cost: freeze (old kernel), retrieve and adopt.
    for k in IOFD_BENCH:
        parts = [figures.get((k, u)) for u in ("us_freeze", "us_retrieve_adopt")]
        rebuild = figures.get((k, "us_rebuild"))
        if None not in parts:
            figures[(k, "us_handover")] = sum(parts)
            if rebuild:
                figures[(k, "x_faster_than_rebuild_all")] = rebuild / sum(parts)
    lines = ["", "Persistent iommufd domain handed over vs mappings rebuilt with "
             "IOMMU_IOAS_MAP_FILE after kexec, mock IOMMU, one VM run", "",
             "| | " + " | ".join(heads) + " |", "|---|" + "---|" * len(IOFD_BENCH)]
    for label, unit, fmt in [
            ("map in the first kernel (us)", "us_map", ",.0f"),
            ("preserve ioctl (us)", "us_preserve", ",.0f"),
            ("freeze in the real kexec (us)", "us_freeze", ",.0f"),
            ("retrieve ioctl (us)", "us_retrieve", ",.0f"),
            ("adopting HWPT_ALLOC (us)", "us_adopt", ",.0f"),
            ("retrieve + adopt (us)", "us_retrieve_adopt", ",.0f"),
            ("freeze + retrieve + adopt (us)", "us_handover", ",.0f"),
            ("rebuild: HWPT_ALLOC + IOAS_MAP_FILE (us)", "us_rebuild", ",.0f"),
            ("rebuild / (retrieve + adopt)", "x_faster_than_rebuild", ",.1f"),
            ("rebuild / (freeze + retrieve + adopt)", "x_faster_than_rebuild_all", ",.1f"),
            ("handover description (bytes)", "description_bytes", ",.0f"),
            ("table chunks handed over (2 MiB each)", "table_chunks", ",.0f")]:
        lines.append(f"| {label} | " + " | ".join(fig(k, unit, fmt) for k in IOFD_BENCH) + " |")
    lines += ["", "Both sides allocate a persistent HWPT (adopt: the allocation is the "
              "adoption) and pin the areas' pages through their files; adopt then checks "
              "every translation against them, rebuild maps them. Neither counts attaching "
              "the device; both files were pinned once before. The mock IOMMU maps without "
              "IOTLB cost, so this is rebuild's best case. Neither shows what the handover is "
              "for: the device's translations never change, while a rebuild needs a new "
              "table under a running device. The freeze time includes waiting for ioctls "
              "under way (none here). IOPTE sizes follow the files' physical contiguity: "
              "the 2M columns may hold larger contiguous entries. One run each; the first "
              "column also pays the first adoption's one-time costs. Description: the "
              "header and arrays written to KHO, from each iommufd's freeze line."]
    return lines


VMM_BACKINGS = ["gmem_2m", "gmem_1g", "memfd_luo_thp", "memfd_luo_4k"]
VMM_PARTS = [("pause + save (ms)", "us_save", 1e-3), ("preserve (ms)", "us_preserve", 1e-3),
             ("freeze, kexec, boot, VMM start (ms)", "ms_kexec", 1),
             ("retrieve (ms)", "us_retrieve", 1e-3), ("restore (ms)", "us_restore", 1e-3),
             ("blackout (ms)", "ms_blackout", 1)]


# What is plotted against guest size: file stem, figure unit, scale, y label.
VMM_PLOTS = [("blackout", "ms_blackout", 1, "blackout (ms)"),
             ("retrieve", "us_retrieve", 1e-3, "retrieve of guest memory (ms)")]


def boot_time_lines(figures):
    """boot_time_bench: boot to init without pools, with 8 GiB, handed over."""
    def ms(key, unit):
        v = figures.get((key, unit))
        return None if v is None else v

    base = ms("boot_no_pools", "ms_to_init")
    rows = [("no pools", "boot_no_pools"), ("8 GiB of pools carved at boot", "boot_pools_8g"),
            ("8 GiB of pools handed over (4.25 GiB preserved)", "boot_pools_8g_handover"),
            ("8 GiB of pools carved pre-HVO'd (persist_alloc_hvo=)", "boot_pools_8g_prehvo")]
    if all(ms(k, "ms_to_init") is None for _, k in rows):
        return []
    lines = ["", "Boot to init, each kernel booted by kexec in one VM run (16 GiB, TCG: "
             "a few hundred ms of noise)", "",
             "| kernel | boot to init (ms) | vs no pools (ms) | struct pages allocated at boot (MiB) |",
             "|---|---|---|---|"]
    for label, key in rows:
        v, mm = ms(key, "ms_to_init"), ms(key, "memmap_boot_mib")
        delta = "n/a" if v is None or base is None else f"{v - base:+,.0f}"
        lines.append(f"| {label} | {'n/a' if v is None else f'{v:,.0f}'} | {delta} "
                     f"| {'n/a' if mm is None else f'{mm:,.1f}'} |")
    memmap, built = ms("boot_pools_8g", "memmap_us"), ms("boot_handover", "ms_to_prebuilt")
    prehvo = ms("boot_pools_8g_prehvo", "memmap_us")
    lines += ["", "struct pages of the 8 GiB carved at boot initialized in "
              + ("n/a" if memmap is None else f"{memmap / 1000:,.1f} ms")
              + " (pre-HVO'd: " + ("n/a" if prehvo is None else f"{prehvo / 1000:,.1f} ms") + ")"
              + "; after the handover, the workers had built every handed-over folio "
              + ("n/a" if built is None else f"{built:,.0f} ms")
              + " after the kernel started (in the background, after init ran)"]
    adopted, adopt_us = ms("boot_handover", "adopted"), ms("boot_handover", "adopt_us")
    if adopted is not None and adopt_us is not None:
        lines += ["", f"adoption of the handover on the boot path (core initcall): {adopted:,} "
                  f"granules of {ms('boot_handover', 'runs'):,} runs and the blocks, "
                  f"{adopt_us / 1000:,.1f} ms"]
    return lines


def vmm_plot(fig, sizes, outdir, what, unit, scale, ylabel):
    """One figure of every backing against guest size: data file, gnuplot PNG."""
    dat = os.path.join(outdir, f"vmm_{what}.dat")
    with open(dat, "w") as f:
        f.write("# GiB " + " ".join(VMM_BACKINGS) + f" ({ylabel})\n")
        for gib in sizes:
            vals = [fig(b, gib, unit, scale) for b in VMM_BACKINGS]
            f.write(f"{gib} " + " ".join("NaN" if v is None else f"{v:.3f}" for v in vals)
                    + "\n")
    png = os.path.join(outdir, f"vmm_{what}.png")
    plot = (f"set terminal pngcairo size 800,500; set output '{png}';"
            f"set title 'pm-vmm live update: {what} (QEMU TCG host: compare slopes)';"
            f"set xlabel 'guest RAM (GiB)'; set ylabel '{ylabel}'; set key left top;"
            "set xtics 1; set logscale y; plot " + ", ".join(
                f"'{dat}' using 1:{i + 2} with linespoints title '{b.replace('_', ' ')}'"
                for i, b in enumerate(VMM_BACKINGS)))
    if shutil.which("gnuplot") and not subprocess.run(["gnuplot", "-e", plot]).returncode:
        return f"Plot of {what}: {png} (data: {dat})"
    return f"No plot of {what}: gnuplot failed or is missing (data: {dat})"


def vmm_blackout_lines(figures, outdir):
    """The vmm_blackout_* benchmarks: a table per guest size and a plot."""
    sizes = sorted({int(k.rsplit("_", 1)[1][:-1]) for k, _ in figures
                    if k.startswith("vmm_") and k.endswith("g")})
    if not sizes:
        return []

    def fig(b, gib, unit, scale):
        v = figures.get((f"vmm_{b}_{gib}g", unit))
        return None if v is None else v * scale

    lines = ["", "Live update blackout of a pm-vmm guest, pause to resume, one VM run "
             "per guest size (one kexec per backing)", ""]
    for gib in sizes:
        lines += [f"| {gib} GiB guest | " + " | ".join(VMM_BACKINGS) + " |",
                  "|---|" + "---|" * len(VMM_BACKINGS)]
        for label, unit, scale in VMM_PARTS:
            vals = [fig(b, gib, unit, scale) for b in VMM_BACKINGS]
            lines.append(f"| {label} | " + " | ".join(
                "n/a" if v is None else f"{v:,.1f}" for v in vals) + " |")
        base = fig("memfd_luo_thp", gib, "ms_blackout", 1)
        ratios = []
        for b in VMM_BACKINGS[:2]:
            v = fig(b, gib, "ms_blackout", 1)
            ratios.append(f"{b} {base / v:.2f}x" if v and base else f"{b} n/a")
        lines += ["", "memfd_luo with THP / " + ", ".join(ratios) + " (blackout)", ""]
    lines += ["Under TCG only the ratios and the slope mean anything. The blackout is "
              "CLOCK_REALTIME across the kexec, which the new kernel takes from the "
              "RTC: up to a second off; its VMM-measured parts are exact."]
    for what, unit, scale, ylabel in VMM_PLOTS:
        lines.append(vmm_plot(fig, sizes, outdir, what, unit, scale, ylabel))
    return lines


def bench_report(tests, logdir, outdir):
    """Collect the benchmarks' figures into a table and raw JSON."""
    figures, rounds = {}, {}
    for t in tests:
        ktap = os.path.join(logdir, f"{t.name}.ktap")
        seen = {}
        for line in open(ktap, errors="replace") if os.path.exists(ktap) else []:
            m = RE_BENCH.match(line.strip())
            if m:
                seen.setdefault((m.group(1), m.group(3)), []).append(float(m.group(2)))
        # A figure reported by several stages (rounds of kexecs) is their median.
        for k, vals in seen.items():
            figures[k] = statistics.median(vals)
            if len(vals) > 1:
                rounds[k] = vals
        console = os.path.join(logdir, f"{t.name}.console.log")
        text = open(console, errors="replace").read() if os.path.exists(console) else ""
        if t.name == "iommufd_persist_bench":
            iofd_freeze_figures(text, figures)
        if t.name == "guest_memfd_persist_bench":
            for m in RE_PREBUILD.finditer(text):
                figures[(f"prebuild_node{m.group(1)}", "folios")] = int(m.group(2))
                figures[(f"prebuild_node{m.group(1)}", "us")] = int(m.group(3))
        if t.name == "boot_time_bench":
            # the carve of generation 3, then the pre-HVO'd one of generation 5
            for key, m in zip(("boot_pools_8g", "boot_pools_8g_prehvo"),
                              RE_MEMMAP.finditer(text)):
                figures[(key, "memmap_us")] = int(m.group(2))
            # generation 4 is the one that adopts extents
            for m in RE_ADOPTED.finditer(text):
                if int(m.group(3)):
                    figures[("boot_handover", "adopted")] = int(m.group(3))
                    figures[("boot_handover", "runs")] = int(m.group(5))
                    figures[("boot_handover", "adopt_us")] = int(m.group(6))
        if t.name == "handover_freeze_bench":
            # one freeze per kexec, each with the extents of its generation
            for m in RE_HANDOVER.finditer(text):
                n = int(m.group(2))
                figures[(f"freeze_{n}", "runs")] = int(m.group(3))
                figures[(f"freeze_{n}", "bytes")] = int(m.group(4)) + int(m.group(5))
                figures[(f"freeze_{n}", "us")] = int(m.group(6))
            continue
        key = "persist_handover" if t.name == "persist_alloc_bench" else f"{t.name}_handover"
        for m in RE_HANDOVER.finditer(text):
            figures[(key, "extents")] = int(m.group(2))
            figures[(key, "runs")] = int(m.group(3))
            figures[(key, "bytes")] = int(m.group(4)) + int(m.group(5))
            figures[(key, "freeze_us")] = int(m.group(6))
            break
    os.makedirs(outdir, exist_ok=True)
    with open(os.path.join(outdir, "results.json"), "w") as f:
        json.dump({f"{k} {u}": rounds.get((k, u), v) for (k, u), v in sorted(figures.items())},
                  f, indent=1)

    def fig(key, unit):
        v = figures.get((key, unit))
        return "n/a" if v is None else f"{v:,.0f}"

    def ratio(a, b):
        x, y = figures.get(a), figures.get(b)
        return "n/a" if not x or not y else f"{x / y:,.0f}x"

    cols = ["persist_1g_hvo", "persist_1g", "persist_2m_hvo", "persist_2m", "persist_4k",
            "memfd_luo"]
    lines = ["Per GiB, one VM run (QEMU TCG: compare ratios, not absolute times)", "",
             "| per GiB | " + " | ".join(cols) + " |",
             "|---|" + "---|" * len(cols)]
    for label, unit in [("allocate (us)", "us_per_gib_alloc"),
                        ("preserve (us)", "us_per_gib_preserve"),
                        ("restore/retrieve (us)", "us_per_gib_restore"),
                        ("handover metadata (bytes)", "metadata_bytes_per_gib")]:
        lines.append(f"| {label} | " + " | ".join(fig(c, unit) for c in cols) + " |")
    lines += ["",
              f"memfd_luo / persist 1G HVO: retrieve {ratio(('memfd_luo', 'us_per_gib_restore'), ('persist_1g_hvo', 'us_per_gib_restore'))}; "
              f"memfd_luo / persist 2M HVO: retrieve {ratio(('memfd_luo', 'us_per_gib_restore'), ('persist_2m_hvo', 'us_per_gib_restore'))}; "
              f"memfd_luo / persist 1G: retrieve {ratio(('memfd_luo', 'us_per_gib_restore'), ('persist_1g', 'us_per_gib_restore'))}, "
              f"metadata {ratio(('memfd_luo', 'metadata_bytes_per_gib'), ('persist_1g', 'metadata_bytes_per_gib'))}; "
              f"memfd_luo / persist 2M: retrieve {ratio(('memfd_luo', 'us_per_gib_restore'), ('persist_2m', 'us_per_gib_restore'))}, "
              f"metadata {ratio(('memfd_luo', 'metadata_bytes_per_gib'), ('persist_2m', 'metadata_bytes_per_gib'))}",
              "",
              "| 1 GiB folio, nothing zeroed on either side | allocate (us) | free (us) |",
              "|---|---|---|"]
    for label, key, free_key in [
            ("persist_alloc pool", "1g_pool", "1g_pool"),
            ("persist_alloc pool, HVO, built from single pages", "1g_pool_hvo_built",
             "1g_pool_hvo"),
            ("persist_alloc pool, HVO, a freed one kept (best of 3)", "1g_pool_hvo_kept", None),
            ("persist_alloc pool, HVO, first of a block pre-HVO'd at boot",
             "1g_pool_hvo_prehvo", None),
            ("alloc_contig_pages", "1g_contig", "1g_contig"),
            ("hugetlb 1 GiB page", "1g_hugetlb", "1g_hugetlb")]:
        free = fig('free_' + free_key, 'us') if free_key else "-"
        lines.append(f"| {label} | {fig('alloc_' + key, 'us')} | {free} |")
    lines += ["", "alloc_contig_pages / pool HVO: built "
              + ratio(("alloc_1g_contig", "us"), ("alloc_1g_pool_hvo_built", "us"))
              + ", kept " + ratio(("alloc_1g_contig", "us"), ("alloc_1g_pool_hvo_kept", "us"))
              + ", pre-HVO'd at boot "
              + ratio(("alloc_1g_contig", "us"), ("alloc_1g_pool_hvo_prehvo", "us"))
              + f" (each one write() of a command or knob; the kept one spends "
              f"{fig('alloc_1g_pool_hvo_kept_in_call', 'us')} us in persist_alloc_folio(), "
              f"the pre-HVO'd one {fig('alloc_1g_pool_hvo_prehvo_in_call', 'us')} us)"]
    lines += ["", "| first 1 GiB HVO folio after a kexec, not asked zeroed (the previous "
              "kernel's data zeroed on the way in both) | allocate (us) | "
              "in persist_alloc_folio() (us) |", "|---|---|---|"]
    for label, key in [("a block kept across the kexec", "1g_pool_hvo_handed_kept"),
                       ("built in an ordinary handed-over block", "1g_pool_hvo_handed_built")]:
        lines.append(f"| {label} | {fig('alloc_' + key, 'us')} | "
                     f"{fig('alloc_' + key + '_in_call', 'us')} |")
    lines += ["", "| struct pages per GiB | bytes |", "|---|---|",
              f"| without HVO | {fig('struct_page_per_gib_plain', 'bytes')} |",
              f"| HVO, 1 GiB folios | {fig('struct_page_per_gib_hvo_1g', 'bytes')} |",
              f"| HVO, 2 MiB folios | {fig('struct_page_per_gib_hvo_2m', 'bytes')} |",
              "", f"handover as written at kexec: {fig('persist_handover', 'extents')} extents "
              f"in {fig('persist_handover', 'runs')} runs, "
              f"{fig('persist_handover', 'bytes')} bytes, frozen in {fig('persist_handover', 'freeze_us')} us; "
              f"received blob {fig('persist_handover_blob', 'bytes')} bytes"]
    lines += ["", "persist_alloc on the reboot path of a real kexec: persist_kho_freeze() from "
              "entry to exit, as the old kernel logs it; the handover was written as "
              "extents were preserved, and freezing folds them into runs and moves the "
              "runs into an extent array just big enough for them", "",
              "| extents preserved | runs | handover bytes (blob + extent array, as preserved) "
              "| freeze (us) |",
              "|---|---|---|---|"]
    for n in (1, 64, 4096):
        lines.append(f"| {n:,} | {fig(f'freeze_{n}', 'runs')} | {fig(f'freeze_{n}', 'bytes')} "
                     f"| {fig(f'freeze_{n}', 'us')} |")
    lines += boot_time_lines(figures)
    lines += gmem_bench_lines(figures)
    lines += sizes_bench_lines(figures)
    lines += iofd_bench_lines(figures)
    lines += vmm_blackout_lines(figures, outdir)
    table = "\n".join(lines) + "\n"
    with open(os.path.join(outdir, "results.md"), "w") as f:
        f.write(table)
    print(table, end="")


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("tests", nargs="*", help="tests to run (default: all)")
    ap.add_argument("--bench", action="store_true",
                    help="run benchmarks.conf and write build/bench/results.{md,json}")
    ap.add_argument("--expect", help="override every test's expectation (e.g. pass)")
    ap.add_argument("--list", action="store_true", help="list the tests and exit")
    ap.add_argument("-j", "--jobs", type=int,
                    help="tests to run at once (default: one per host CPU; 1 with --bench)")
    args = ap.parse_args()

    manifest = load_manifest(os.path.join(TESTDIR, "benchmarks.conf" if args.bench
                                          else "vmtests.conf"))
    if args.list:
        for t in manifest:
            print(f"{t.name}: {t.stages} stage(s), expect {t.expect}")
        return 0
    names = args.tests or [t.name for t in manifest]
    unknown = set(names) - {t.name for t in manifest}
    if unknown:
        sys.exit(f"vmtest: unknown tests: {' '.join(sorted(unknown))}")
    tests = [t for t in manifest if t.name in names]

    obj = os.path.join(BUILD, "obj")
    kernel = os.path.join(obj, "arch/x86/boot/bzImage")
    hdr = os.path.join(BUILD, "hdr")
    if not os.path.exists(kernel):
        sys.exit(f"vmtest: {kernel} missing: run 'make kernel' first")
    if shutil.which("qemu-system-x86_64") is None:
        sys.exit("vmtest: qemu-system-x86_64 missing: run 'make deps'")
    workdir = os.path.join(BUILD, "vmtest")
    bindir = os.path.join(workdir, "bin")
    logdir = os.path.join(BUILD, "logs", "vmtest")
    os.makedirs(logdir, exist_ok=True)
    build_programs(hdr, bindir)
    initrd = os.path.join(workdir, "bench.cpio" if args.bench else "initramfs.cpio")
    build_initramfs(manifest, obj, bindir, initrd)

    # Benchmarks time themselves: one VM at a time, nothing beside it.
    jobs = 1 if args.bench else max(1, args.jobs or len(os.sched_getaffinity(0)))
    budget = memory_budget_mib()
    print("KTAP version 1")
    print(f"# persistmem vmtest: {len(tests)} tests, logs in {logdir}, up to {jobs} at once "
          f"within {budget} MiB of guest memory")
    print(f"1..{len(tests)}")
    passed = failed = 0
    for i, t, (ok, msg, wall, _) in run_tests(tests, jobs, budget, kernel, initrd, logdir,
                                             args.expect):
        print(f"{'ok' if ok else 'not ok'} {i} {t.name} # {wall:.1f} s: {msg}", flush=True)
        if ok:
            passed += 1
        else:
            failed += 1
            print(f"# see {logdir}/{t.name}.console.log and {t.name}.ktap", flush=True)
    if args.bench:
        bench_report(tests, logdir, os.path.join(BUILD, "bench"))
    else:
        counts = os.path.join(BUILD, "results")
        os.makedirs(counts, exist_ok=True)
        with open(os.path.join(counts, "vmtest.counts"), "w") as f:
            f.write(f"{passed} {failed}\n")
    print(f"{passed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
