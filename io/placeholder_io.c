/* Placeholder so that rcc_io has a source until its files land. */
void rcc_io_placeholder(void);
void rcc_io_placeholder(void) {}
