// SPDX-License-Identifier: GPL-2.0
/*
 * persist_alloc_cmdline: a persist_alloc= full of mistakes does not stop
 * the kernel from booting. Booted with
 *   persist_alloc=0:1536M,7:1G,1:1G,1:2G,x
 * node 0 (size not a multiple of 1G), node 7 (not online), 'x' and the
 * second node 1 entry are reported and skipped, node 1 gets its 1 GiB,
 * and the pools work.
 */
#include <errno.h>
#include <string.h>
#include <unistd.h>

#include "persist_test.h"

int main(int argc, char **argv)
{
	static const char * const messages[] = {
		"persist_alloc: node 0: size '1536M' is not a non-zero multiple of 1G, skipped",
		"persist_alloc: node 7 is not online, its 1 GiB pool skipped",
		"persist_alloc: node 1 given twice, second entry skipped",
		"persist_alloc: entry 'x' is not <node>:<size>, skipped",
		"persist_alloc: reserved 1 GiB at boot",
	};
	unsigned int i;
	int fd, ret;

	vt_stage(argc, argv, 1);
	for (i = 0; i < ARRAY_SIZE(messages); i++)
		vt_result(vt_dmesg_contains(messages[i]), "kernel log: '%s'", messages[i]);
	vt_result(pt_node_stat(0, "total_bytes") == 0, "node 0: no pool (%llu bytes)",
		  pt_node_stat(0, "total_bytes"));
	vt_result(pt_node_stat(1, "total_bytes") == PT_GIB, "node 1: 1 GiB pool (%llu bytes)",
		  pt_node_stat(1, "total_bytes"));
	fd = pt_open();
	ret = pt_cmd(fd, "alloc 0 0 0");
	vt_result(ret == -ENOMEM, "node 0 without pool: alloc fails with ENOMEM (ret %d)", ret);
	ret = pt_cmd(fd, "alloc 1 18 0");
	vt_result(!ret, "node 1: 1 GiB folio (ret %d)", ret);
	vt_result(!pt_cmd(fd, "free 0"), "node 1: freed");
	close(fd);
	return vt_finish();
}
