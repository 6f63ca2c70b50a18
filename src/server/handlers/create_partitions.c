/* Not yet implemented: closes the connection like an unsupported request. */
#include "server/internal.h"

void handle_create_partitions(struct request *req) { request_malformed(req); }
