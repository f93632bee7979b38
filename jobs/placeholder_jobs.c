/* Placeholder so that rcc_jobs has a source until its files land. */
void rcc_jobs_placeholder(void);
void rcc_jobs_placeholder(void) {}
