// SPDX-License-Identifier: GPL-2.0
/*
 * pm-vmm: loading a Linux bzImage and entering it at its 64-bit entry.
 *
 * Guest physical layout below 1 MiB:
 *   0x00500  GDT (null, null, 64-bit code 0x10, data 0x18)
 *   0x07000  boot_params ("zero page")
 *   0x09000  PML4, 0x0a000 PDPT, 0x0b000.. page directories: the first
 *            4 GiB identity mapped with 2 MiB pages
 *   0x20000  kernel command line
 *   0xf0000  MP floating pointer and configuration table (reserved in e820)
 * The kernel's protected-mode image goes at 16 MiB, the initrd at the top
 * of the RAM below 3 GiB; RAM beyond 3 GiB is at 4 GiB and up.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <asm/bootparam.h>
#include <asm/e820.h>

#include "vmm.h"

#define GDT_ADDR	0x500
#define ZERO_PAGE	0x7000
#define PML4_ADDR	0x9000
#define PDPT_ADDR	0xa000
#define PD_ADDR		0xb000
#define CMDLINE_ADDR	0x20000
#define CMDLINE_MAX	0x10000
#define MPTABLE_ADDR	0xf0000
#define KERNEL_ADDR	0x1000000
#define EBDA_START	0x9fc00
#define IOAPIC_ADDR	0xfec00000u
#define LAPIC_ADDR	0xfee00000u

static void *read_file(const char *path, size_t *len)
{
	struct stat sb;
	void *buf;
	int fd = open(path, O_RDONLY | O_CLOEXEC);

	if (fd < 0 || fstat(fd, &sb)) {
		vmm_log("%s: %m", path);
		if (fd >= 0)
			close(fd);
		return NULL;
	}
	buf = malloc(sb.st_size ? sb.st_size : 1);
	if (buf && read(fd, buf, sb.st_size) != sb.st_size) {
		vmm_log("%s: short read", path);
		free(buf);
		buf = NULL;
	}
	close(fd);
	*len = sb.st_size;
	return buf;
}

static uint8_t mp_checksum(const uint8_t *p, size_t len)
{
	uint8_t sum = 0;

	while (len--)
		sum += *p++;
	return -sum;
}

/*
 * MP specification 1.4 tables: one processor entry per vCPU (APIC ID =
 * index), an ISA bus, the IOAPIC (ID nr_vcpus) with ISA IRQ n on pin n
 * as KVM's default routing has it, ExtINT on LINT0 and NMI on LINT1.
 */
static void write_mptable(struct vmm *v)
{
	uint8_t *base = v->ram + MPTABLE_ADDR, *p;
	uint8_t *cfg = base + 16;
	uint16_t entries = 0;

	memset(base, 0, 0x1000);
	p = cfg + 44;
	for (unsigned int i = 0; i < v->nr_vcpus; i++, entries++) {
		p[0] = 0;			/* processor */
		p[1] = i;			/* local APIC ID */
		p[2] = 0x14;			/* version */
		p[3] = 1 | (i == 0 ? 2 : 0);	/* enabled, BSP */
		p[4] = 0x00;			/* signature: family 6 */
		p[5] = 0x06;
		p[8] = 0x01;			/* features: FPU */
		p[9] = 0x02;			/* APIC */
		p += 20;
	}
	p[0] = 1;				/* bus 0: ISA */
	memcpy(p + 2, "ISA   ", 6);
	p += 8, entries++;
	p[0] = 2;				/* IOAPIC */
	p[1] = v->nr_vcpus;
	p[2] = 0x11;
	p[3] = 1;
	memcpy(p + 4, &(uint32_t){ IOAPIC_ADDR }, 4);
	p += 8, entries++;
	for (unsigned int irq = 0; irq < 16; irq++) {
		if (irq == 2)
			continue;
		p[0] = 3;			/* I/O interrupt: INT */
		p[5] = irq;			/* ISA IRQ */
		p[6] = v->nr_vcpus;		/* to the IOAPIC */
		p[7] = irq;			/* pin */
		p += 8, entries++;
	}
	for (unsigned int lint = 0; lint < 2; lint++) {
		p[0] = 4;			/* local interrupt */
		p[1] = lint ? 1 : 3;		/* NMI, ExtINT */
		p[6] = 0xff;			/* every local APIC */
		p[7] = lint;
		p += 8, entries++;
	}

	memcpy(cfg, "PCMP", 4);
	memcpy(cfg + 4, &(uint16_t){ p - cfg }, 2);
	cfg[6] = 4;
	memcpy(cfg + 8, "PERSIST ", 8);
	memcpy(cfg + 16, "PM-VMM      ", 12);
	memcpy(cfg + 34, &entries, 2);
	memcpy(cfg + 36, &(uint32_t){ LAPIC_ADDR }, 4);
	cfg[7] = mp_checksum(cfg, p - cfg);

	memcpy(base, "_MP_", 4);
	memcpy(base + 4, &(uint32_t){ MPTABLE_ADDR + 16 }, 4);
	base[8] = 1;				/* length in 16 bytes */
	base[9] = 4;
	base[10] = mp_checksum(base, 16);
}

static void write_page_tables(struct vmm *v)
{
	uint64_t *pml4 = (void *)(v->ram + PML4_ADDR);
	uint64_t *pdpt = (void *)(v->ram + PDPT_ADDR);
	uint64_t *pd = (void *)(v->ram + PD_ADDR);

	memset(pml4, 0, 4096);
	memset(pdpt, 0, 4096);
	pml4[0] = PDPT_ADDR | 0x3;			/* present, writable */
	for (int i = 0; i < 4; i++)
		pdpt[i] = (PD_ADDR + i * 4096) | 0x3;
	for (int i = 0; i < 4 * 512; i++)
		pd[i] = ((uint64_t)i << 21) | 0x83;	/* 2 MiB pages */
}

static int setup_bsp(struct vmm *v, uint64_t entry)
{
	static const uint64_t gdt[] = {
		0, 0,
		0x00af9b000000ffffull,		/* 0x10: 64-bit code */
		0x00cf93000000ffffull,		/* 0x18: data */
	};
	struct kvm_segment code = {
		.selector = 0x10, .limit = 0xffffffff, .type = 11, .present = 1,
		.s = 1, .l = 1, .g = 1,
	};
	struct kvm_segment data = {
		.selector = 0x18, .limit = 0xffffffff, .type = 3, .present = 1,
		.s = 1, .db = 1, .g = 1,
	};
	struct kvm_regs regs = {
		.rip = entry, .rsi = ZERO_PAGE, .rflags = 2,
	};
	struct kvm_sregs sregs;
	int fd = v->vcpus[0].fd;

	memcpy(v->ram + GDT_ADDR, gdt, sizeof(gdt));
	if (ioctl(fd, KVM_GET_SREGS, &sregs))
		return -errno;
	sregs.gdt.base = GDT_ADDR;
	sregs.gdt.limit = sizeof(gdt) - 1;
	sregs.cs = code;
	sregs.ds = data;
	sregs.es = data;
	sregs.fs = data;
	sregs.gs = data;
	sregs.ss = data;
	sregs.cr3 = PML4_ADDR;
	sregs.cr4 = 1 << 5;			/* PAE */
	sregs.cr0 = 0x80050033;			/* PG, AM, WP, NE, ET, MP, PE */
	sregs.efer = 0x500;			/* LMA, LME */
	if (ioctl(fd, KVM_SET_SREGS, &sregs) || ioctl(fd, KVM_SET_REGS, &regs))
		return -errno;
	return 0;
}

static void add_e820(struct boot_params *bp, uint64_t addr, uint64_t size,
		     uint32_t type)
{
	struct boot_e820_entry *e = &bp->e820_table[bp->e820_entries++];

	e->addr = addr;
	e->size = size;
	e->type = type;
}

int vmm_load_guest(struct vmm *v, const char *kernel, const char *initrd,
		   const char *cmdline)
{
	size_t klen, ilen = 0, setup_len, hdr_end;
	uint8_t *image, *rd = NULL;
	struct boot_params *bp = (void *)(v->ram + ZERO_PAGE);
	uint64_t rd_addr = 0, rd_max;
	int ret = -EINVAL;

	image = read_file(kernel, &klen);
	if (!image)
		return -ENOENT;
	if (initrd) {
		rd = read_file(initrd, &ilen);
		if (!rd)
			goto out;
	}
	if (klen < 0x1000 || memcmp(image + 0x202, "HdrS", 4)) {
		vmm_log("%s: not a bzImage", kernel);
		goto out;
	}
	memset(bp, 0, sizeof(*bp));
	/* the header ends where its jump at 0x200 lands; newer ones are longer */
	hdr_end = 0x202 + image[0x201];
	if (hdr_end - 0x1f1 > sizeof(bp->hdr))
		hdr_end = 0x1f1 + sizeof(bp->hdr);
	memcpy(&bp->hdr, image + 0x1f1, hdr_end - 0x1f1);
	if (bp->hdr.version < 0x20c || !(bp->hdr.xloadflags & XLF_KERNEL_64)) {
		vmm_log("%s: boot protocol %#x has no 64-bit entry", kernel,
			bp->hdr.version);
		goto out;
	}
	/* it goes at KERNEL_ADDR: it must be able to run there */
	if ((!bp->hdr.relocatable_kernel && bp->hdr.pref_address != KERNEL_ADDR) ||
	    !bp->hdr.kernel_alignment || KERNEL_ADDR % bp->hdr.kernel_alignment) {
		vmm_log("%s: cannot run at %#x (relocatable %u, wants %#llx aligned to %#x)",
			kernel, KERNEL_ADDR, bp->hdr.relocatable_kernel,
			(unsigned long long)bp->hdr.pref_address, bp->hdr.kernel_alignment);
		goto out;
	}
	setup_len = ((bp->hdr.setup_sects ? bp->hdr.setup_sects : 4) + 1) * 512;
	if (setup_len >= klen || KERNEL_ADDR + bp->hdr.init_size > vmm_low_ram(v)) {
		vmm_log("%s: does not fit in %llu MiB of guest RAM", kernel,
			(unsigned long long)(v->ram_size >> 20));
		goto out;
	}
	memcpy(v->ram + KERNEL_ADDR, image + setup_len, klen - setup_len);

	if (strlen(cmdline) >= CMDLINE_MAX ||
	    strlen(cmdline) >= bp->hdr.cmdline_size) {
		vmm_log("kernel command line too long");
		goto out;
	}
	strcpy((char *)v->ram + CMDLINE_ADDR, cmdline);
	bp->hdr.cmd_line_ptr = CMDLINE_ADDR;
	bp->hdr.type_of_loader = 0xff;
	bp->hdr.loadflags |= LOADED_HIGH | CAN_USE_HEAP;
	bp->hdr.heap_end_ptr = 0xfe00;
	bp->hdr.vid_mode = 0xffff;

	if (rd) {
		rd_max = bp->hdr.initrd_addr_max;
		if (bp->hdr.xloadflags & XLF_CAN_BE_LOADED_ABOVE_4G)
			rd_max = ~0ull;
		rd_max = rd_max < vmm_low_ram(v) - 1 ? rd_max + 1 : vmm_low_ram(v);
		rd_addr = (rd_max - ilen) & ~0xfffull;
		if (ilen > rd_max || rd_addr < KERNEL_ADDR + bp->hdr.init_size) {
			vmm_log("%s: no room for the initrd", initrd);
			goto out;
		}
		memcpy(v->ram + rd_addr, rd, ilen);
		bp->hdr.ramdisk_image = rd_addr;
		bp->ext_ramdisk_image = rd_addr >> 32;
		bp->hdr.ramdisk_size = ilen;
		bp->ext_ramdisk_size = (uint64_t)ilen >> 32;
	}

	add_e820(bp, 0, EBDA_START, E820_RAM);
	add_e820(bp, EBDA_START, 0xa0000 - EBDA_START, E820_RESERVED);
	add_e820(bp, MPTABLE_ADDR, 0x10000, E820_RESERVED);
	add_e820(bp, 0x100000, vmm_low_ram(v) - 0x100000, E820_RAM);
	if (v->ram_size > vmm_low_ram(v))
		add_e820(bp, VMM_HIGH_RAM, v->ram_size - vmm_low_ram(v), E820_RAM);

	write_mptable(v);
	write_page_tables(v);
	ret = setup_bsp(v, KERNEL_ADDR + 0x200);
	if (ret)
		vmm_log("boot vCPU registers: %s", strerror(-ret));
out:
	free(image);
	free(rd);
	return ret;
}
