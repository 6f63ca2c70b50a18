/* Not yet implemented: closes the connection like an unsupported request. */
#include "server/internal.h"

void handle_offset_for_leader_epoch(struct request *req) { request_malformed(req); }
