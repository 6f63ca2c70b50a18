/* Not yet implemented: closes the connection like an unsupported request. */
#include "server/internal.h"

void handle_delete_records(struct request *req) { request_malformed(req); }
