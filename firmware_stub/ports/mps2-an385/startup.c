/* Reset and vector table for the Cortex-M3: no SDK, no CMSIS. */
#include <stdint.h>
#include <string.h>

extern uint32_t _sidata, _sdata, _edata, _sbss, _ebss, _estack;
int main(void);
void Reset_Handler(void);

static void Default_Handler(void)
{
    for (;;) {
    }
}

void Reset_Handler(void)
{
    memcpy(&_sdata, &_sidata, (size_t)((char *)&_edata - (char *)&_sdata));
    memset(&_sbss, 0, (size_t)((char *)&_ebss - (char *)&_sbss));
    main();
    for (;;) {
    }
}

typedef void (*vector)(void);

/* Initial stack pointer, then reset, NMI, HardFault, MemManage, BusFault, UsageFault. */
__attribute__((section(".isr_vector"), used)) static const vector vectors[16] = {
    (vector)(uintptr_t)&_estack, Reset_Handler,   Default_Handler, Default_Handler,
    Default_Handler,             Default_Handler, Default_Handler, 0,
    0,                           0,               0,               Default_Handler,
    Default_Handler,             0,               Default_Handler, Default_Handler,
};
