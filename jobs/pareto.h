/* The numbers of a sweep report: the Pareto front of trials on two objectives to maximize
 * (compression and retention), and mean, standard deviation and 95% confidence interval
 * of repeated trials. */
#pragma once
#include <stdbool.h>

/* front[i] = true when point i is valid and no other valid point is at least as large on
 * both x and y and larger on one. Equal points are all on the front. */
void rcc_pareto_front(const double *x, const double *y, const bool *valid, int n, bool *front);

/* Mean, sample standard deviation (n - 1) and the half width of the 95% confidence
 * interval of the mean (Student's t with n - 1 degrees of freedom) of v[0..n). With n == 1
 * std and ci95 are NaN; n must be >= 1. */
void rcc_mean_std_ci(const double *v, int n, double *mean, double *std, double *ci95);

/* Student's t quantile 0.975 for `df` >= 1 degrees of freedom (table to 30, then an
 * approximation within 0.002). */
double rcc_t975(int df);
