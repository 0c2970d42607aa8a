// SPDX-License-Identifier: GPL-2.0
/*
 * pm-vmm: an 8250 UART at 0x3f8, IRQ 4, output only.
 *
 * Transmission is instant: a byte written to THR goes to the VMM's
 * standard output and THR is empty again at once, so LSR always reads
 * THRE | TEMT, and with IER.THRI set a "THR empty" interrupt is pending
 * until IIR is read or THR written, as on the real chip. Nothing is ever
 * received. The registers are device state: saved in the state file and
 * restored on resume, so the guest's driver finds the UART as it left it.
 */
#include <errno.h>
#include <string.h>
#include <unistd.h>

#include "vmm.h"

#define UART_BASE	0x3f8
#define UART_IRQ	4

#define UART_LCR_DLAB	0x80
#define UART_IER_THRI	0x02
#define UART_IIR_NO_INT	0x01
#define UART_IIR_THRI	0x02
#define UART_LSR_TEMT	0x40
#define UART_LSR_THRE	0x20
#define UART_MCR_LOOP	0x10
#define UART_MSR_DCD_DSR_CTS	0xb0

/* Called with v->lock held: drive IRQ 4 to what the registers say. */
static void uart_update_irq(struct vmm *v)
{
	struct uart *u = &v->uart;
	bool level = (u->ier & UART_IER_THRI) && u->thr_irq;

	if (level != u->irq_level) {
		u->irq_level = level;
		vmm_set_irq(v, UART_IRQ, level);
	}
}

/*
 * The MSR in loopback mode: the modem outputs fed back to the inputs,
 * DTR to DSR, RTS to CTS, OUT1 to RI and OUT2 to DCD.
 */
static uint8_t uart_loop_msr(uint8_t mcr)
{
	return (mcr & 0x01) << 5 | (mcr & 0x02) << 3 | (mcr & 0x0c) << 4;
}

void uart_io(struct vmm *v, uint16_t port, bool in, uint8_t *data)
{
	struct uart *u = &v->uart;
	unsigned int reg = port - UART_BASE;
	bool dlab, out = false;

	pthread_mutex_lock(&v->lock);
	dlab = u->lcr & UART_LCR_DLAB;
	if (in) {
		switch (reg) {
		case 0:
			*data = dlab ? u->dll : 0;
			break;
		case 1:
			*data = dlab ? u->dlm : u->ier;
			break;
		case 2:
			*data = (u->ier & UART_IER_THRI) && u->thr_irq ?
				UART_IIR_THRI : UART_IIR_NO_INT;
			u->thr_irq = false;
			break;
		case 3:
			*data = u->lcr;
			break;
		case 4:
			*data = u->mcr;
			break;
		case 5:
			*data = UART_LSR_TEMT | UART_LSR_THRE;
			break;
		case 6:
			*data = u->mcr & UART_MCR_LOOP ? uart_loop_msr(u->mcr) :
				UART_MSR_DCD_DSR_CTS;
			break;
		default:
			*data = u->scr;
		}
	} else {
		switch (reg) {
		case 0:
			if (dlab) {
				u->dll = *data;
			} else {
				out = !(u->mcr & UART_MCR_LOOP);
				u->thr_irq = true;
			}
			break;
		case 1:
			if (dlab) {
				u->dlm = *data;
			} else {
				/* enabling THRI with THR empty raises it */
				if (!(u->ier & UART_IER_THRI) && (*data & UART_IER_THRI))
					u->thr_irq = true;
				u->ier = *data & 0x0f;
			}
			break;
		case 3:
			u->lcr = *data;
			break;
		case 4:
			u->mcr = *data & 0x1f;
			break;
		case 7:
			u->scr = *data;
			break;
		}
	}
	uart_update_irq(v);
	pthread_mutex_unlock(&v->lock);
	/*
	 * Outside the lock: a slow reader of the console stalls this vCPU
	 * only, not the control channel, and a pause waits for the write
	 * (vmm_pause() kicks again). A console nobody reads loses the byte.
	 */
	if (out)
		(void)!write(STDOUT_FILENO, data, 1);
}

void uart_save(struct vmm *v, struct pm_state *st)
{
	pm_state_add(st, VMM_REC_UART, 0, &v->uart, sizeof(v->uart));
}

int uart_restore(struct vmm *v, const struct pm_state *st)
{
	uint32_t size;
	const struct uart *u = pm_state_find(st, VMM_REC_UART, 0, &size);

	if (!u || size != sizeof(*u))
		return -EBADMSG;
	pthread_mutex_lock(&v->lock);
	v->uart = *u;
	/* a new VM's line starts low: drive it to the saved level again */
	v->uart.irq_level = false;
	uart_update_irq(v);
	pthread_mutex_unlock(&v->lock);
	return 0;
}
