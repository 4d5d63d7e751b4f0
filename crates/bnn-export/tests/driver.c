/* Test driver for an exported network: reads an IDX image file and prints,
 * per image, the class and the score bits. Built with
 *   -DDRIVER_HEADER='"name.h"' -DDRIVER_PREDICT=name_predict
 *   -DDRIVER_INPUTS=NAME_INPUTS -DDRIVER_CLASSES=NAME_CLASSES
 */
#include <stdio.h>
#include <stdint.h>
#include <string.h>
#include DRIVER_HEADER

static uint32_t be32(const unsigned char *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | (uint32_t)p[3];
}

int main(int argc, char **argv)
{
    static uint8_t pixels[DRIVER_INPUTS];
    float scores[DRIVER_CLASSES];
    unsigned char header[16];
    uint32_t count, i, j;
    FILE *f;

    if (argc != 2) {
        fprintf(stderr, "usage: driver IMAGES.idx\n");
        return 2;
    }
    f = fopen(argv[1], "rb");
    if (f == NULL || fread(header, 1, 16, f) != 16 || be32(header) != 0x803u) {
        fprintf(stderr, "%s: not an IDX image file\n", argv[1]);
        return 2;
    }
    count = be32(header + 4);
    if ((unsigned long)be32(header + 8) * be32(header + 12) != (unsigned long)DRIVER_INPUTS) {
        fprintf(stderr, "%s: images are not %d pixels\n", argv[1], DRIVER_INPUTS);
        return 2;
    }
    for (i = 0; i < count; ++i) {
        int class_only;
        int c;
        if (fread(pixels, 1, DRIVER_INPUTS, f) != (size_t)DRIVER_INPUTS) {
            fprintf(stderr, "%s: truncated at image %lu\n", argv[1], (unsigned long)i);
            return 2;
        }
        c = DRIVER_PREDICT(pixels, scores);
        class_only = DRIVER_PREDICT(pixels, NULL);
        printf("%d", class_only == c ? c : -1);
        for (j = 0; j < DRIVER_CLASSES; ++j) {
            uint32_t bits;
            memcpy(&bits, &scores[j], sizeof bits);
            printf(" %08lx", (unsigned long)bits);
        }
        printf("\n");
    }
    fclose(f);
    return 0;
}
