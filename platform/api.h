/*
 * api.h - the platform's routes: binds http.c to ingest and enrollment.
 */
#ifndef PF_API_H
#define PF_API_H

#include "http.h"
#include "platform.h"

/* Fills h so that pf_http_start serves the API of pf.  pf must outlive
 * the server. */
void pf_api_handler(struct pf_platform *pf, struct pf_http_handler *h);

#endif
