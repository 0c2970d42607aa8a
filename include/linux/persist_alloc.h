/* SPDX-License-Identifier: GPL-2.0 */
/*
 * persist_alloc: persistent memory pools whose allocations survive kexec.
 *
 * See Documentation/mm/persist_alloc.rst.
 */
#ifndef _LINUX_PERSIST_ALLOC_H
#define _LINUX_PERSIST_ALLOC_H

#include <linux/bits.h>
#include <linux/err.h>
#include <linux/types.h>

struct folio;
struct notifier_block;

/* Granule orders: 4 KiB, 2 MiB and 1 GiB with 4 KiB base pages. */
#define PERSIST_ORDER_4K	0
#define PERSIST_ORDER_2M	9
#define PERSIST_ORDER_1G	18

/* Remove the folio from the kernel direct map while it is allocated. */
#define PERSIST_ALLOC_NO_DIRECT_MAP	BIT(0)
/* Free the folio's vmemmap tail pages (huge granules only). */
#define PERSIST_ALLOC_HVO		BIT(1)
/* Hand the folio out zeroed. */
#define PERSIST_ALLOC_ZERO		BIT(2)
/*
 * Charge the folio to the current memory cgroup (the active one, see
 * set_active_memcg(), or the calling task's) until it is freed.
 */
#define PERSIST_ALLOC_ACCOUNT		BIT(3)

#define PERSIST_ALLOC_FLAGS	(PERSIST_ALLOC_NO_DIRECT_MAP | PERSIST_ALLOC_HVO | \
				 PERSIST_ALLOC_ZERO | PERSIST_ALLOC_ACCOUNT)

static inline bool persist_order_valid(unsigned int order)
{
	return order == PERSIST_ORDER_4K || order == PERSIST_ORDER_2M ||
	       order == PERSIST_ORDER_1G;
}

#ifdef CONFIG_PERSIST_ALLOC

void persist_alloc_reserve_early(void);
void persist_alloc_vmemmap_init_early(int nid);
struct folio *persist_alloc_folio(int nid, unsigned int order, unsigned long flags);
int persist_free_folio(struct folio *folio);
bool persist_alloc_has_pool(void);
int persist_alloc_preserve(struct folio *folio, u64 owner);
int persist_alloc_unpreserve(struct folio *folio);
struct folio *persist_alloc_restore(phys_addr_t phys, u64 owner);
int persist_alloc_release(phys_addr_t phys, u64 owner);
int persist_alloc_unrestore(struct folio *folio, u64 owner);
int persist_alloc_claim(phys_addr_t phys, unsigned int order, unsigned long nr,
			unsigned long flags, u64 owner);
void persist_alloc_unclaim(phys_addr_t phys, unsigned int order, unsigned long nr, u64 owner);
long persist_folio_flags(struct folio *folio);
int persist_folio_charge(struct folio *folio);
bool persist_alloc_owns_pfn(unsigned long pfn);
int persist_alloc_memory_failure(unsigned long pfn, int flags);
bool persist_alloc_page_hwpoisoned(unsigned long pfn);
int persist_alloc_register_failure_notifier(struct notifier_block *nb);
int persist_alloc_unregister_failure_notifier(struct notifier_block *nb);

#else

static inline void persist_alloc_reserve_early(void)
{
}

static inline void persist_alloc_vmemmap_init_early(int nid)
{
}

static inline struct folio *persist_alloc_folio(int nid, unsigned int order,
						unsigned long flags)
{
	return ERR_PTR(-EOPNOTSUPP);
}

static inline int persist_free_folio(struct folio *folio)
{
	return -EINVAL;
}

static inline bool persist_alloc_has_pool(void)
{
	return false;
}

static inline int persist_alloc_preserve(struct folio *folio, u64 owner)
{
	return -EOPNOTSUPP;
}

static inline int persist_alloc_unpreserve(struct folio *folio)
{
	return -EINVAL;
}

static inline struct folio *persist_alloc_restore(phys_addr_t phys, u64 owner)
{
	return ERR_PTR(-ENOENT);
}

static inline int persist_alloc_release(phys_addr_t phys, u64 owner)
{
	return -ENOENT;
}

static inline int persist_alloc_unrestore(struct folio *folio, u64 owner)
{
	return -EINVAL;
}

static inline int persist_alloc_claim(phys_addr_t phys, unsigned int order,
				      unsigned long nr, unsigned long flags, u64 owner)
{
	return -ENOENT;
}

static inline void persist_alloc_unclaim(phys_addr_t phys, unsigned int order,
					 unsigned long nr, u64 owner)
{
}

static inline int persist_folio_charge(struct folio *folio)
{
	return -EINVAL;
}

static inline long persist_folio_flags(struct folio *folio)
{
	return -EINVAL;
}

static inline bool persist_alloc_owns_pfn(unsigned long pfn)
{
	return false;
}

static inline int persist_alloc_memory_failure(unsigned long pfn, int flags)
{
	return -ENOENT;
}

static inline bool persist_alloc_page_hwpoisoned(unsigned long pfn)
{
	return false;
}

static inline int persist_alloc_register_failure_notifier(struct notifier_block *nb)
{
	return -EOPNOTSUPP;
}

static inline int persist_alloc_unregister_failure_notifier(struct notifier_block *nb)
{
	return -EOPNOTSUPP;
}

#endif /* CONFIG_PERSIST_ALLOC */

#endif /* _LINUX_PERSIST_ALLOC_H */
