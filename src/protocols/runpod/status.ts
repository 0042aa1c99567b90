/** RunPod serverless on the wire: a job's statuses and the worker input shapes darkroom knows. */

export const RUNPOD_STATUSES = ['IN_QUEUE', 'IN_PROGRESS', 'COMPLETED', 'FAILED', 'CANCELLED', 'TIMED_OUT'] as const;
export type RunpodStatus = (typeof RUNPOD_STATUSES)[number];

/** The input shapes of the RunPod workers darkroom knows: worker-comfyui, worker-sdxl, an A1111 worker, the custom worker. */
export const RUNPOD_INPUT_FORMATS = ['comfyui', 'sdxl', 'a1111', 'custom'] as const;
export type RunpodInputFormat = (typeof RUNPOD_INPUT_FORMATS)[number];
