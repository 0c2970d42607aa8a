#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0
"""make demo: a running Linux guest survives two host kexecs.

Runs the vmtest vmm_live_update (QEMU TCG host, nested KVM guest under
tools/persistmem's pm-vmm, guest RAM on persistent guest_memfd) and prints
its timeline from the stages' reports: the guest's counter and uptime
before and after each update, the checksum passes over its memory, the
blackout split into its parts, and after each kexec what the handover
inspector (tools/persistmem/inspect) says the new kernel received. Ends with PASS or FAIL and that exit status.
"""
import os
import re
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BUILD = os.environ.get("BUILD", os.path.join(ROOT, "build"))
TEST = "vmm_live_update"

RE_STAGE = re.compile(r"^# vmtest: test \S+ stage (\d+) kernel (\S+) uptime ([\d.]+)")
RE_PAUSED = re.compile(r"^# timeline: paused n=(\d+) up=([\d.]+) pass=(\d+) ready "
                       r"pause_us=(\d+) save_us=(\d+) preserve_us=(\d+)")
RE_RESUMED = re.compile(r"^# timeline: resumed n=(-?\d+) up=([-\d.]+) pass=(\d+)\.\.(-?\d+) "
                        r"bad=(\d+) .*retrieve_us=(\d+) restore_us=(\d+) blackout_ms=(\d+)")
RE_START = re.compile(r"^# guest: pmw: start mib=(\d+) sum=(\S+) up=([\d.]+)")
RE_BOOTED = re.compile(r"^ok \d+ guest booted and runs \(n=(\d+) up=([\d.]+)")
RE_NOTOK = re.compile(r"^not ok \d+ (.*)")
RE_INSPECT = re.compile(r"^# inspect: (.*)")
RE_STEP = re.compile(r" step=([\d.]+) ")


def ms(us):
    return f"{int(us) / 1000:.1f} ms"


def main():
    print("persistmem demo: a Linux guest under pm-vmm survives two host kexecs")
    print("(host: QEMU TCG, 2 vCPUs; guest: this kernel, nested KVM, 2 vCPUs,")
    print(" 512 MiB of persistent guest_memfd in 2 MiB granules, pm-workload as init)")
    print("Under TCG absolute times are slow; only their split and ratios mean anything.")
    print("The blackout is CLOCK_REALTIME across the kexec; the new kernel takes it from")
    print("the RTC, so it may be up to a second off. Its VMM-measured parts are exact.")
    print()
    rc = subprocess.run([os.path.join(ROOT, "scripts/vmtest.py"), TEST]).returncode
    ktap = os.path.join(BUILD, "logs", "vmtest", f"{TEST}.ktap")
    try:
        lines = open(ktap).read().splitlines()
    except OSError:
        print(f"demo: no report in {ktap}")
        print("FAIL")
        return 1

    print()
    print("timeline")
    failures = []
    updates = 0
    pause = save = preserve = 0
    boot_ms = 0
    inspected = False
    for line in lines:
        m = RE_STAGE.match(line)
        if m:
            boot_ms = float(m.group(3)) * 1000
            print(f"  host kernel {m.group(1)} ({m.group(2)}): init at uptime {m.group(3)} s")
            continue
        m = RE_START.match(line)
        if m:
            print(f"    guest booted: wrote {m.group(1)} MiB, checksum {m.group(2)}, "
                  f"guest uptime {m.group(3)} s")
            continue
        m = RE_BOOTED.match(line)
        if m:
            print(f"    guest counting: n={m.group(1)} at guest uptime {m.group(2)} s")
            continue
        m = RE_PAUSED.match(line)
        if m:
            updates += 1
            pause, save, preserve = int(m.group(4)), int(m.group(5)), int(m.group(6))
            print(f"    live update {updates}: guest paused at n={m.group(1)}, "
                  f"uptime {m.group(2)} s, {m.group(3)} checksum passes so far")
            print(f"      VMM: pause {ms(pause)}, save state {ms(save)}, "
                  f"preserve in LUO {ms(preserve)}; then kexec")
            continue
        m = RE_RESUMED.match(line)
        if m:
            n, up = m.group(1), m.group(2)
            p0, p1, bad = int(m.group(3)), int(m.group(4)), int(m.group(5))
            retrieve, restore, blackout = int(m.group(6)), int(m.group(7)), int(m.group(8))
            vmm_old = pause + save + preserve if updates else 0
            kexec = blackout * 1000 - vmm_old - retrieve - restore
            freeze = max(kexec - boot_ms * 1000, 0)
            print(f"      VMM --resume: retrieve {ms(retrieve)}, restore {ms(restore)}")
            print(f"      blackout {blackout} ms = VMM save {ms(pause + save)} + preserve "
                  f"{ms(preserve)} + freeze, kexec jump and VMM start {ms(freeze)} + "
                  f"new kernel's boot to init {ms(boot_ms * 1000)} + "
                  f"retrieve {ms(retrieve)} + restore {ms(restore)}")
            print(f"    guest resumed at n={n}, uptime {up} s (no reboot); "
                  f"checksum verified in {p1 - p0} full passes, {bad} bad")
            step = RE_STEP.search(line)
            if step:
                print(f"      guest clock: stepped {step.group(1)} s over the blackout "
                      "(kvmclock, restored with KVM_CLOCK_REALTIME)")
            inspected = False
            continue
        m = RE_INSPECT.match(line)
        if m:
            if not inspected:
                print("    handover inspector (pm-inspect) in the new kernel, guest running:")
                inspected = True
            print(f"      {m.group(1)}")
            continue
        m = RE_NOTOK.match(line)
        if m:
            failures.append(m.group(1))
    print()
    for f in failures:
        print(f"  failed: {f}")
    ok = rc == 0 and not failures and updates == 2
    print("PASS: the guest ran through 2 host kexecs without a reboot" if ok else "FAIL")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
