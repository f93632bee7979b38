/* Placeholder so that rcc_backend has a source until its files land. */
void rcc_backend_placeholder(void);
void rcc_backend_placeholder(void) {}
