/* Placeholder so that rcc_model has a source until its files land. */
void rcc_model_placeholder(void);
void rcc_model_placeholder(void) {}
