package vram

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
)

// amdVendorID is the PCI vendor id sysfs reports for AMD/ATI devices.
const amdVendorID = "0x1002"

// AMD probes AMD GPUs through the amdgpu driver's sysfs files. It reads only
// files, so tests point Root at a fixture tree.
type AMD struct {
	// Root is the filesystem root holding sys/; empty means "/".
	Root string
}

var _ Prober = (*AMD)(nil)

// cardName matches DRM card directories and not their connectors
// (card0-DP-1), which share the prefix.
var cardName = regexp.MustCompile(`^card(\d+)$`)

// Probe lists /sys/class/drm/card*/device, keeps the AMD ones, and reads the
// VRAM, busy, temperature and power files that exist. A card lacking a file
// is still reported, with that value unknown.
func (a *AMD) Probe(ctx context.Context) ([]GPU, error) {
	root := a.Root
	if root == "" {
		root = "/"
	}
	drm := filepath.Join(root, "sys", "class", "drm")
	entries, err := os.ReadDir(drm)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, &unavailableError{msg: fmt.Sprintf("no AMD GPU: %s does not exist", drm)}
	}
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", drm, err)
	}
	var gpus []GPU
	for _, e := range entries {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		m := cardName.FindStringSubmatch(e.Name())
		if m == nil {
			continue
		}
		dev := filepath.Join(drm, e.Name(), "device")
		vendor, err := readTrimmed(filepath.Join(dev, "vendor"))
		if err != nil || vendor != amdVendorID {
			continue
		}
		idx, _ := strconv.Atoi(m[1]) // the regexp guarantees digits
		gpus = append(gpus, readAMDCard(dev, idx))
	}
	if len(gpus) == 0 {
		return nil, &unavailableError{msg: fmt.Sprintf("no AMD GPU under %s (is the amdgpu driver loaded?)", drm)}
	}
	sort.Slice(gpus, func(i, j int) bool { return gpus[i].Index < gpus[j].Index })
	return gpus, nil
}

func readAMDCard(dev string, idx int) GPU {
	g := GPU{Source: SourceAMD, Index: idx}
	g.Name, _ = readTrimmed(filepath.Join(dev, "product_name"))
	if g.Name == "" {
		id, _ := readTrimmed(filepath.Join(dev, "device"))
		g.Name = strings.TrimSpace("AMD GPU " + id)
	}
	g.UUID, _ = readTrimmed(filepath.Join(dev, "unique_id"))
	g.MemoryTotalBytes = readUint(filepath.Join(dev, "mem_info_vram_total"))
	g.MemoryUsedBytes = readUint(filepath.Join(dev, "mem_info_vram_used"))
	if g.MemoryTotalBytes != nil && g.MemoryUsedBytes != nil && *g.MemoryUsedBytes <= *g.MemoryTotalBytes {
		free := *g.MemoryTotalBytes - *g.MemoryUsedBytes
		g.MemoryFreeBytes = &free
	}
	if busy := readUint(filepath.Join(dev, "gpu_busy_percent")); busy != nil {
		v := float64(*busy)
		g.UtilizationPercent = &v
	}
	// The hwmon directory number is assigned at boot; take the first that
	// has the file.
	hwmons, _ := filepath.Glob(filepath.Join(dev, "hwmon", "hwmon*"))
	sort.Strings(hwmons)
	for _, h := range hwmons {
		if g.TemperatureC == nil {
			g.TemperatureC = scaled(readUint(filepath.Join(h, "temp1_input")), 1e3) // millidegrees
		}
		if g.PowerDrawW == nil {
			g.PowerDrawW = scaled(readUint(filepath.Join(h, "power1_average")), 1e6) // microwatts
		}
		if g.PowerLimitW == nil {
			g.PowerLimitW = scaled(readUint(filepath.Join(h, "power1_cap")), 1e6)
		}
	}
	return g
}

func readTrimmed(path string) (string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return "", err
	}
	return strings.TrimSpace(string(b)), nil
}

// readUint returns nil when the file is missing or unreadable: sysfs files
// vary by kernel and card, and a missing one means "unknown".
func readUint(path string) *uint64 {
	s, err := readTrimmed(path)
	if err != nil {
		return nil
	}
	v, err := strconv.ParseUint(s, 10, 64)
	if err != nil {
		return nil
	}
	return &v
}

func scaled(v *uint64, div float64) *float64 {
	if v == nil {
		return nil
	}
	f := float64(*v) / div
	return &f
}
