// SPDX-License-Identifier: GPL-2.0
/*
 * handover_freeze_bench: what persist_alloc does on the reboot path of a
 * real kexec, against how much is preserved (make bench).
 *
 * Generations 1 to 3 each preserve a set of 4 KiB extents (1, 64, 4096)
 * through the test consumer and kexec with it. The handover is kept up to
 * date as extents are preserved, so freezing it at the kexec only folds
 * the preserved entries into runs, one pass, moves the runs into an array
 * just big enough for them and seals a few headers: the old kernel logs
 * "handover frozen: ... in N us" on the console, from the start of
 * persist_kho_freeze() to its end, and the runner reads it, with the runs
 * and the bytes handed over (blob and extent array, as preserved), from
 * there (scripts/vmtest.py --bench). The next generation restores and frees the
 * set it received, then preserves the next one. Generation 4 only
 * receives.
 */
#include "persist_test.h"

static const unsigned int sets[] = { 1, 64, 4096 };

/* Restore and free what generation @gen preserved. */
static void receive(int fd, int gen)
{
	unsigned int nr = sets[gen - 1];
	unsigned long long pending = pt_node_stat(0, "pending_bytes");

	vt_result(pending == nr * 4096ull, "%u extents handed over: %llu bytes pending",
		  nr, pending);
	vt_result(!pt_cmd(fd, "restore-all %d", gen) && !pt_node_stat(0, "pending_bytes"),
		  "%u extents restored, none pending", nr);
	vt_result(!pt_cmd(fd, "free-all"), "%u extents freed", nr);
}

int main(int argc, char **argv)
{
	int gen = vt_stage(argc, argv, 4);
	int fd = pt_open();

	if (gen > 1)
		receive(fd, gen - 1);
	if (gen == 4)
		return vt_finish();
	vt_result(!pt_cmd(fd, "fill %u 0 0 0", sets[gen - 1]),
		  "%u 4 KiB extents allocated", sets[gen - 1]);
	vt_result(!pt_cmd(fd, "preserve-all %d", gen) &&
		  pt_node_stat(0, "preserved_bytes") == sets[gen - 1] * 4096ull,
		  "%u extents preserved", sets[gen - 1]);
	/* The file stays open: its preserved folios are handed over. */
	vt_hold();
}
