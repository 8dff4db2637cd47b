"""The ESPnet model wrapper: segments, losses, the generator and discriminator turns."""

from __future__ import annotations

import contextlib
from typing import Any, Dict, Optional, Tuple

import torch
from espnet2.gan_tts.hifigan.loss import (
    DiscriminatorAdversarialLoss,
    FeatureMatchLoss,
    GeneratorAdversarialLoss,
)
from espnet2.layers.abs_normalize import AbsNormalize
from espnet2.torch_utils.device_funcs import force_gatherable
from espnet2.train.abs_gan_espnet_model import AbsGANESPnetModel

from espnet_hifigan.nets.discriminator import HiFiGANDiscriminator
from espnet_hifigan.nets.features import LogMelSpectrogram
from espnet_hifigan.nets.generator import HiFiGANGenerator
from espnet_hifigan.train.amp_compile import NetworkRunner, fp32_region
from espnet_hifigan.train.discriminator_calls import frozen, weight_norms_computed_once
from espnet_hifigan.train.feature_lengths import DEFAULT_FEATS_LENGTH_TOLERANCE
from espnet_hifigan.train.losses import MelL1Loss
from espnet_hifigan.train.segments import cut_segments


class ESPnetHiFiGANModel(AbsGANESPnetModel):
    """HiFi-GAN vocoder model for ESPnet's ``GANTrainer``.

    The trainer calls :meth:`forward` twice per batch, once per turn. The generator runs once
    per batch: its output is cached by the first turn and reused by the second, as in the
    official training loop (which scores the same ``y_g_hat`` in the D and the G step).

    Args:
        feats_extract: Log-mel extractor; defines the feature contract. Used to make the
            generator input from ``speech`` when no ``feats`` come from the data loader.
        normalize: Optional global MVN applied to the input features.
        generator: HiFi-GAN generator.
        discriminator: MPD + MSD.
        segment_size: Training segment in samples; must be a multiple of the hop length.
        lambda_adv: Weight of the adversarial loss.
        lambda_feat_match: Weight of the feature-matching loss (paper: 2).
        lambda_mel: Weight of the mel L1 loss (paper: 45).
        mel_loss_conf: Fields of the loss mel that differ from the input features (``fmax``
            is the official ``fmax_for_loss``; defaults: natural log, fmin 0, fmax fs/2).
        feat_match_include_final: Include each discriminator's final score map in the feature
            matching loss (the official code does).
        cache_generator_outputs: Run the generator once per batch (official behaviour).
        validate_full_utterances: In validation, also synthesise every utterance in full and
            report ``loss_mel_l1`` (L1 of the loss mel: natural log, 0 to ``fmax_for_loss``) and
            ``mrstft`` (multi-resolution STFT distance) so that
            ``best_model_criterion: [[valid, loss_mel_l1, min]]`` keeps the best checkpoints.
        feats_length_tolerance: Frames by which pre-extracted features may differ from
            ``num_frames`` of their audio; beyond it training stops naming the utterance
            (checked before training and in every batch by :mod:`espnet_hifigan.train.feature_lengths`).
        discriminator_train_start_steps: Generator warm-up (ParallelWaveGAN's option of the same
            name): for the first N training steps the generator learns from the mel loss alone
            and the discriminator is not updated; then the official losses and D updates
            start. 0 (default) is the official recipe. The step count is kept in the state
            dict (``num_train_steps``) when N > 0, so a resumed run continues where it stopped.
            Under DDP the warm-up's D turn uses no parameter; the task sets
            ``--unused_parameters true`` itself (:meth:`VocoderTask.build_model`).
        autocast_dtype: null (fp32), ``bfloat16`` or ``float16`` (CUDA with ``--use_amp true``
            only): the generator's and discriminator's forwards run under ``torch.autocast``;
            segments, STFT/mel and losses stay fp32 (:mod:`espnet_hifigan.train.amp_compile`).
        compile: Run the generator's and discriminator's forwards through ``torch.compile``
            (checkpoint keys unchanged; inference uses the eager modules).
        compile_mode: ``torch.compile`` mode (null = its default).
        compile_backend: ``torch.compile`` backend (``inductor``).
    """

    def __init__(
        self,
        feats_extract: LogMelSpectrogram,
        normalize: Optional[AbsNormalize],
        generator: HiFiGANGenerator,
        discriminator: HiFiGANDiscriminator,
        segment_size: int = 8192,
        lambda_adv: float = 1.0,
        lambda_feat_match: float = 2.0,
        lambda_mel: float = 45.0,
        mel_loss_conf: Optional[Dict[str, Any]] = None,
        feat_match_include_final: bool = True,
        cache_generator_outputs: bool = True,
        validate_full_utterances: bool = True,
        feats_length_tolerance: int = DEFAULT_FEATS_LENGTH_TOLERANCE,
        discriminator_train_start_steps: int = 0,
        autocast_dtype: Optional[str] = None,
        compile: bool = False,
        compile_mode: Optional[str] = None,
        compile_backend: str = "inductor",
    ):
        super().__init__()
        hop = feats_extract.hop_length
        if generator.upsample_factor != hop:
            raise ValueError(
                f"generator upsamples by {generator.upsample_factor} but the features' "
                f"hop_length is {hop}: they must be equal"
            )
        if segment_size % hop != 0 or segment_size <= 0:
            raise ValueError(f"segment_size ({segment_size}) must be a positive multiple of hop_length ({hop})")
        self.feats_extract = feats_extract
        self.normalize = normalize
        self.generator = generator
        self.discriminator = discriminator
        self.segment_size = segment_size
        self.segment_frames = segment_size // hop
        self.hop_length = hop
        self.lambda_adv = lambda_adv
        self.lambda_feat_match = lambda_feat_match
        self.lambda_mel = lambda_mel
        self.generator_adv_loss = GeneratorAdversarialLoss(average_by_discriminators=False, loss_type="mse")
        self.discriminator_adv_loss = DiscriminatorAdversarialLoss(
            average_by_discriminators=False, loss_type="mse"
        )
        self.feat_match_loss = FeatureMatchLoss(
            average_by_layers=False,
            average_by_discriminators=False,
            include_final_outputs=feat_match_include_final,
        )
        self.mel_loss = MelL1Loss(feats_extract.get_parameters(), mel_loss_conf)
        self.cache_generator_outputs = cache_generator_outputs
        self.validate_full_utterances = validate_full_utterances
        self.feats_length_tolerance = feats_length_tolerance
        self._cache: Optional[Tuple[torch.Tensor, torch.Tensor]] = None
        if discriminator_train_start_steps < 0:
            raise ValueError(f"discriminator_train_start_steps must be >= 0, got {discriminator_train_start_steps}")
        self.discriminator_train_start_steps = discriminator_train_start_steps
        # Saved (and resumed) only when the warm-up is on: default checkpoints keep their keys.
        self.register_buffer(
            "num_train_steps", torch.zeros((), dtype=torch.long), persistent=discriminator_train_start_steps > 0
        )
        # Autocast / compiled forwards of the networks (a plain object: no state_dict entries).
        self.run_network = NetworkRunner(autocast_dtype, compile, compile_mode, compile_backend)

    def _in_warmup(self) -> bool:
        """True while training in the generator-only warm-up (mel loss, no D updates)."""
        # The counter is only read (a host sync on GPU) when a warm-up is configured.
        if self.discriminator_train_start_steps == 0 or not self.training:
            return False
        return int(self.num_train_steps) < self.discriminator_train_start_steps

    # ------------------------------------------------------------------ segments
    def _cut_segments(
        self,
        speech: torch.Tensor,
        speech_lengths: torch.Tensor,
        feats: Optional[torch.Tensor],
        feats_lengths: Optional[torch.Tensor],
    ) -> Tuple[torch.Tensor, torch.Tensor]:
        """Cut aligned (features, audio) segments (:func:`espnet_hifigan.train.segments.cut_segments`).

        Random starts in training, the first frame otherwise. Training batches arrive already
        cut by the collate function (:class:`espnet_hifigan.train.segments.SegmentCollate`); cutting
        them again returns them unchanged.

        Args:
            speech: Waveform (B, T).
            speech_lengths: (B,).
            feats: Raw (un-normalised) features (B, F, n_mels) or None.
            feats_lengths: (B,) or None.

        Returns:
            Features (B, segment_frames, n_mels) and audio (B, segment_size).
        """
        silence = None if feats is None else self.feats_extract.silence_value()
        audio, seg, _ = cut_segments(
            speech, speech_lengths, feats, feats_lengths, self.segment_size, self.hop_length, silence,
            random=self.training,
        )
        if seg is None:
            mel, _ = self.feats_extract(audio)
            seg = mel[:, : self.segment_frames]
        return seg, audio

    # ------------------------------------------------------------------ turns
    def _generate(
        self,
        speech: torch.Tensor,
        speech_lengths: torch.Tensor,
        feats: Optional[torch.Tensor],
        feats_lengths: Optional[torch.Tensor],
    ) -> Tuple[torch.Tensor, torch.Tensor]:
        """Return reference and generated segments, (B, 1, segment_size) each."""
        if self.cache_generator_outputs and self._cache is not None:
            y, y_hat = self._cache
            self._cache = None
            return y, y_hat
        if speech.dim() != 2:
            raise ValueError(f"speech must be mono (B, T), got shape {tuple(speech.shape)}")
        with fp32_region(speech.device):
            seg, audio = self._cut_segments(speech, speech_lengths, feats, feats_lengths)
            if self.normalize is not None:
                seg, _ = self.normalize(seg)
        y_hat = self.run_network("generator", self.generator, seg.transpose(1, 2), self.training)
        y = audio.unsqueeze(1)
        if self.cache_generator_outputs:
            self._cache = (y, y_hat)
        return y, y_hat

    def forward(
        self,
        speech: torch.Tensor,
        speech_lengths: torch.Tensor,
        feats: Optional[torch.Tensor] = None,
        feats_lengths: Optional[torch.Tensor] = None,
        forward_generator: bool = True,
        **kwargs,
    ) -> Dict[str, Any]:
        """Loss of the generator or the discriminator turn.

        Args:
            speech: Waveform (B, T).
            speech_lengths: (B,).
            feats: Pre-extracted raw log-mel (B, F, n_mels) or None.
            feats_lengths: (B,) or None.
            forward_generator: Generator turn if True, else discriminator turn.

        Returns:
            dict(loss, stats, weight, optim_idx) with optim_idx 0 (G) or 1 (D).
        """
        y, y_hat = self._generate(speech, speech_lengths, feats, feats_lengths)
        batch_size = speech.size(0)
        if not forward_generator:
            if self._in_warmup():
                return self._idle_discriminator_turn(y, batch_size)
            return self._discriminator_turn(y, y_hat, batch_size)
        if self._in_warmup():
            retval = self._warmup_generator_turn(y, y_hat, batch_size)
        else:
            retval = self._generator_turn(y, y_hat, batch_size)
        if self.training:
            self.num_train_steps += 1
        if not self.training and self.validate_full_utterances:
            metrics = self.full_utterance_metrics(speech, speech_lengths, feats, feats_lengths)
            retval["stats"].update(force_gatherable(metrics, y.device))
        return retval

    def _generator_turn(self, y: torch.Tensor, y_hat: torch.Tensor, batch_size: int) -> Dict[str, Any]:
        # The discriminator's own gradients of this turn are never used (the trainer zeroes every
        # optimizer after each turn): only the gradient to y_hat is computed through it. (With
        # grad_clip > 0, ESPnet's norm of this turn now covers the generator's gradients only.)
        # Frozen first, so that the weights computed once carry no graph to the parameters.
        with frozen(self.discriminator) if self.training else contextlib.nullcontext():
            with weight_norms_computed_once(self.discriminator, enabled=not self.run_network.compile):
                p_hat = self.run_network("discriminator", self.discriminator, y_hat, self.training)
                with torch.no_grad():
                    p = self.run_network("discriminator", self.discriminator, y, self.training)
        with fp32_region(y.device):
            mel_loss = self.mel_loss(y_hat.float(), y.float())
            adv_loss = self.generator_adv_loss(p_hat)
            fm_loss = self.feat_match_loss(p_hat, p)
        loss = self.lambda_adv * adv_loss + self.lambda_feat_match * fm_loss + self.lambda_mel * mel_loss
        terms = dict(
            generator_loss=loss,
            generator_adv_loss=adv_loss,
            generator_feat_match_loss=fm_loss,
            generator_mel_loss=mel_loss,
        )
        return self._turn_output(terms, batch_size, optim_idx=0)

    def _discriminator_turn(self, y: torch.Tensor, y_hat: torch.Tensor, batch_size: int) -> Dict[str, Any]:
        # One pass over real and fake halves: the same FLOPs, half the kernel launches.
        both = torch.cat([y, y_hat.detach()], dim=0)
        outs = self.run_network("discriminator", self.discriminator, both, self.training)
        p = [[t[:batch_size] for t in layers] for layers in outs]
        p_hat = [[t[batch_size:] for t in layers] for layers in outs]
        with fp32_region(y.device):
            real_loss, fake_loss = self.discriminator_adv_loss(p_hat, p)
        loss = real_loss + fake_loss
        terms = dict(discriminator_loss=loss, discriminator_real_loss=real_loss, discriminator_fake_loss=fake_loss)
        return self._turn_output(terms, batch_size, optim_idx=1)

    def _warmup_generator_turn(self, y: torch.Tensor, y_hat: torch.Tensor, batch_size: int) -> Dict[str, Any]:
        """Warm-up G turn: the mel loss alone; the GAN terms are reported as 0 (not computed)."""
        with fp32_region(y.device):
            mel_loss = self.mel_loss(y_hat.float(), y.float())
        zero = torch.zeros((), device=y.device)
        terms = dict(
            generator_loss=self.lambda_mel * mel_loss,
            generator_adv_loss=zero,
            generator_feat_match_loss=zero,
            generator_mel_loss=mel_loss,
        )
        return self._turn_output(terms, batch_size, optim_idx=0)

    @staticmethod
    def _idle_discriminator_turn(y: torch.Tensor, batch_size: int) -> Dict[str, Any]:
        """Warm-up D turn: a zero loss that reaches no parameter, so the D optimizer skips them all.

        (ESPnet's GANTrainer calls ``backward()`` and ``step()`` on every turn; AdamW leaves
        parameters without gradients untouched, weight decay included.)
        """
        zero = torch.zeros((), device=y.device, requires_grad=True)
        terms = dict(
            discriminator_loss=zero,
            discriminator_real_loss=zero.detach(),
            discriminator_fake_loss=zero.detach(),
        )
        return ESPnetHiFiGANModel._turn_output(terms, batch_size, optim_idx=1)

    @staticmethod
    def _turn_output(terms: Dict[str, torch.Tensor], batch_size: int, optim_idx: int) -> Dict[str, Any]:
        """ESPnet's dict(loss, stats, weight, optim_idx); the first term is the loss.

        Stats stay detached tensors (no host sync here) and everything is made gatherable
        (1-dim tensors), as ESPnet's DataParallel / DDP averaging requires.
        """
        loss = next(iter(terms.values()))
        stats = {name: term.detach() for name, term in terms.items()}
        loss, stats, weight = force_gatherable((loss, stats, batch_size), loss.device)
        return dict(loss=loss, stats=stats, weight=weight, optim_idx=optim_idx)

    @torch.no_grad()
    def full_utterance_metrics(
        self,
        speech: torch.Tensor,
        speech_lengths: torch.Tensor,
        feats: Optional[torch.Tensor] = None,
        feats_lengths: Optional[torch.Tensor] = None,
    ) -> Dict[str, torch.Tensor]:
        """Copy-synthesis metrics over whole utterances (validation), batched on the device.

        The padded batch is synthesised in one generator call (frames beyond an utterance's
        length hold the silence value, as in training segments), each output is trimmed to its
        own length, and the metrics are computed with torch where the batch lives (spectra per
        utterance, so that each is framed and padded exactly as on its own); the one host read
        is the lengths, and the results stay tensors.

        Args:
            speech: Waveform (B, T).
            speech_lengths: (B,).
            feats: Raw log-mel (B, F, n_mels) or None (computed from ``speech``).
            feats_lengths: (B,) or None.

        Returns:
            dict(loss_mel_l1=batch mean of the L1 of the *loss* mel (``mel_loss_conf``: natural
            log, fmin 0 to ``fmax_for_loss``), mrstft=batch mean of the multi-resolution STFT
            distance (:func:`espnet_hifigan.evaluation.metrics.spectral.stft_distance_terms`)), 0-dim
            tensors; lower is better for both.
        """
        from espnet_hifigan.evaluation.metrics.spectral import stft_distance_terms

        if feats is None:
            feats, feats_lengths = self.feats_extract(speech, speech_lengths)
        frames = torch.arange(feats.size(1), device=feats.device)
        beyond = (frames[None, :] >= feats_lengths[:, None]).unsqueeze(-1)
        feats = torch.where(beyond, self.feats_extract.silence_value().to(feats.dtype), feats)
        if self.normalize is not None:
            feats, _ = self.normalize(feats)
        wav_hat = self.generator(feats.transpose(1, 2)).squeeze(1).float()  # (B, F * hop)
        lengths = torch.minimum(feats_lengths * self.hop_length, speech_lengths).tolist()
        mel_l1, mrstft = [], []
        with fp32_region(wav_hat.device):  # spectra in float32, as the training mel loss
            for i, length in enumerate(lengths):
                ref = speech[i, :length].float()
                gen = wav_hat[i, :length]
                mel_l1.append(self.mel_loss(gen.view(1, 1, -1), ref.view(1, 1, -1)))
                mrstft.append(stft_distance_terms(ref, gen).sum())
        return dict(loss_mel_l1=torch.stack(mel_l1).mean(), mrstft=torch.stack(mrstft).mean())

    # ------------------------------------------------------------------ other entry points
    def collect_feats(
        self,
        speech: torch.Tensor,
        speech_lengths: torch.Tensor,
        feats: Optional[torch.Tensor] = None,
        feats_lengths: Optional[torch.Tensor] = None,
        **kwargs,
    ) -> Dict[str, torch.Tensor]:
        """Features for ESPnet's ``--collect_stats`` mode (normalisation statistics)."""
        if feats is None:
            feats, feats_lengths = self.feats_extract(speech, speech_lengths)
        return dict(feats=feats, feats_lengths=feats_lengths)

    @torch.no_grad()
    def inference(self, feats: torch.Tensor, normalize_input: bool = True) -> Dict[str, torch.Tensor]:
        """Synthesise one utterance.

        Args:
            feats: Raw log-mel (frames, n_mels).
            normalize_input: Apply the model's normalisation first.

        Returns:
            dict(wav=(frames * hop,)).
        """
        if normalize_input and self.normalize is not None:
            feats, _ = self.normalize(feats.unsqueeze(0))
            feats = feats.squeeze(0)
        return dict(wav=self.generator.inference(feats))
