/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Helpers for persistmem vmtest stage programs.
 *
 * A stage program runs under the vmtest init (init.c) as
 * "/tests/<name> <stage>". It reports KTAP test points on stdout, which
 * init forwards to the results serial port. To survive into the next
 * kernel it calls vt_hold(): init then kexecs while the program (and the
 * LUO session file descriptors it owns) stays alive. Returning from main()
 * ends the test; its exit status is reported too.
 */
#ifndef _PERSISTMEM_VMTEST_H
#define _PERSISTMEM_VMTEST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "../kselftest.h"
/* LUO ioctl wrappers: tools/testing/selftests/liveupdate/lib */
#include <libliveupdate.h>

#define VT_HOLD_LINE "# vmtest: hold"
#define VT_NEXT_ARGS "# vmtest: next-args "

/* Parse "<prog> <stage>"; exits with status 2 on a bad command line. */
int vt_stage(int argc, char **argv, int max_stage);

/* Report one KTAP test point; returns @pass. */
__printf(2, 3) bool vt_result(bool pass, const char *fmt, ...);
/* KTAP diagnostic line ("# ..."). */
__printf(1, 2) void vt_diag(const char *fmt, ...);
/* Report a failed test point and exit(1): for setup steps that gate the rest. */
__printf(1, 2) __noreturn void vt_fatal(const char *fmt, ...);

/* This kernel and the initramfs, as init loads them for kexec. */
#define VT_KERNEL_IMAGE	"/boot/bzImage"
#define VT_INITRD_IMAGE	"/sys/firmware/initrd"

/* Write @val to the file at @path; 0 or -errno. */
int vt_write_file(const char *path, const char *val);
/*
 * Load this kernel for kexec with this boot's command line plus
 * @extra_args, for a stage that reboots by itself; 0 or -errno.
 */
int vt_kexec_load(const char *extra_args);
/*
 * reboot(RB_KEXEC) into this kernel with @escaped=1 added to its command
 * line, for a live update armed to fail in its freeze: returns the errno
 * of the failed reboot, 0 if the reboot returned 0; the image is unloaded
 * again. A stage that finds @escaped on its command line booted from a
 * kexec that should have failed.
 */
int vt_kexec_cancelled(const char *escaped);

/*
 * Boot the next kernel with @args added to the command line, replacing
 * parameters of the same name. Call before vt_hold().
 */
void vt_next_args(const char *args);
/* Print the plan and the hold marker, then sleep until the kexec. */
__noreturn void vt_hold(void);
/*
 * vt_hold(), and once init has loaded the next kernel (it reboots into it
 * right after) call @at_kexec(@arg): to start something that must still
 * be running during the kexec. @at_kexec must not print.
 */
__noreturn void vt_hold_then(void (*at_kexec)(void *arg), void *arg);
/* Print the plan and return the exit status for main(): 0 if all passed. */
int vt_finish(void);

/* Monotonic time in nanoseconds. */
uint64_t vt_now_ns(void);

/*
 * Seeded pattern: each 8-byte word holds a hash of (seed, offset), so a
 * byte found at the wrong offset or from another seed is detected.
 * vt_check_pattern() returns the offset of the first bad byte, or -1.
 */
void vt_fill_pattern(void *buf, size_t len, uint64_t seed, uint64_t base_off);
long long vt_check_pattern(const void *buf, size_t len, uint64_t seed,
			   uint64_t base_off);
/* Write the pattern of @seed over the first @len bytes of file @fd. */
void vt_fill_file(int fd, size_t len, uint64_t seed);

/*
 * Tracing: vt_trace_start() mounts tracefs if needed, clears the buffer and
 * enables the events of @system; vt_trace_count() stops tracing and counts
 * the buffer's lines that contain both @event and @match ("" for any).
 */
int vt_trace_start(const char *system);
int vt_trace_count(const char *event, const char *match);
/*
 * vt_trace_values() stops tracing too, and reads fields "<key>=<value>"
 * (value in C notation) of the buffer's lines that contain @event, in
 * buffer order: line n < @max stores the value of @keys[k] in
 * vals[n * @nr_keys + k], VT_TRACE_NONE if the line lacks it. Returns the
 * number of lines that contain @event (may exceed @max), or -errno.
 */
#define VT_TRACE_NONE	UINT64_MAX
int vt_trace_values(const char *event, const char *const *keys, int nr_keys,
		    uint64_t *vals, int max);

/* Whether the kernel log contains @text; how many times it does. */
bool vt_dmesg_contains(const char *text);
unsigned int vt_dmesg_count(const char *text);
/* Value of "@key=" on this kernel's command line, or NULL. */
const char *vt_cmdline_value(const char *key, char *buf, size_t size);
/*
 * The number of the first line of file @path that sscanf() @format (with
 * one "%lld") reads, such as "MemTotal: %lld kB" of /proc/meminfo; or -1.
 */
long long vt_proc_value(const char *path, const char *format);
/*
 * Memory KHO holds for the next kernel beyond what is preserved for its
 * own sake: serialized state and the radix tree listing preserved memory
 * (debugfs kho/out/serialized_bytes plus radix_bytes), in bytes; -1 if
 * KHO does not say.
 */
long long vt_kho_written(void);
/*
 * Its two parts: the serialized state (kho/out/serialized_bytes) and the
 * radix tree (kho/out/radix_bytes). KHO frees no radix node when memory
 * is unpreserved, so the tree only grows until the kexec; -1 if KHO does
 * not say.
 */
long long vt_kho_serialized(void);
long long vt_kho_radix(void);

/*
 * Open /dev/liveupdate (once per process) and create or retrieve session
 * @name; ends the stage with vt_fatal() on failure.
 */
int vt_session(const char *name, bool create);

#endif /* _PERSISTMEM_VMTEST_H */
