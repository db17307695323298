/* RESHAPE: NHWC bytes are the same before and after; the planner normally
 * aliases the two tensors, in which case this does nothing. */
#include <string.h>

#include "ereid_nn.h"

ereid_status ereid_reshape_s8(const int8_t *input, int8_t *output, int32_t size)
{
    if (input == NULL || output == NULL || size < 0) {
        return EREID_ARG_ERROR;
    }
    if (input != output) {
        memmove(output, input, (size_t)size);
    }
    return EREID_OK;
}
