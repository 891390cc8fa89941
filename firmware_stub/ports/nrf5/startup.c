/* Reset and vector table for the nRF5 Cortex-M0/M4: no SDK, no CMSIS. */
#include <stdint.h>
#include <string.h>

extern uint32_t _sidata, _sdata, _edata, _sbss, _ebss, _estack;
int main(void);
void Reset_Handler(void);
void UART0_IRQHandler(void);

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

/* Initial stack pointer and the 15 system exceptions, then the peripherals by ID: UART0 is
 * ID 2 (0x40002000) on the nRF51 and the nRF52 alike. */
__attribute__((section(".isr_vector"), used)) static const vector vectors[16 + 3] = {
    (vector)(uintptr_t)&_estack, Reset_Handler,   Default_Handler, Default_Handler,
    Default_Handler,             Default_Handler, Default_Handler, 0,
    0,                           0,               0,               Default_Handler,
    Default_Handler,             0,               Default_Handler, Default_Handler,
    Default_Handler,             Default_Handler, UART0_IRQHandler,
};
