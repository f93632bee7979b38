/* Wall-clock time for phase timings and progress rates. */
#pragma once

/* Seconds on a monotonic clock (differences only; never goes back). */
double rcc_now_seconds(void);
