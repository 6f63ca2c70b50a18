/* Not yet implemented: closes the connection like an unsupported request. */
#include "server/internal.h"

void handle_delete_topics(struct request *req) { request_malformed(req); }
