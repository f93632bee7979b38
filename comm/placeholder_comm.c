/* Placeholder so that rcc_comm has a source until its files land. */
void rcc_comm_placeholder(void);
void rcc_comm_placeholder(void) {}
