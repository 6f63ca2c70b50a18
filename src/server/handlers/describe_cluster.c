/* Not yet implemented: closes the connection like an unsupported request. */
#include "server/internal.h"

void handle_describe_cluster(struct request *req) { request_malformed(req); }
