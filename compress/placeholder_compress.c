/* Placeholder so that rcc_compress has a source until its files land. */
void rcc_compress_placeholder(void);
void rcc_compress_placeholder(void) {}
