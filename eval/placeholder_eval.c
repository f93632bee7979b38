/* Placeholder so that rcc_eval has a source until eval/ lands. */
void rcc_eval_placeholder(void);
void rcc_eval_placeholder(void) {}
